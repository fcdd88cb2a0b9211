// Parlons desk: microphone -> WebSocket -> LiveConversation, results on two panels.
// No framework, no build step, nothing fetched from outside this server.
"use strict";

// Each language by its own name, in its own script (Intl.DisplayNames for the others).
const LANGUAGES = [
  ["detect", "Détecter la langue"], ["ar", "العربية"], ["en", "English"], ["uk", "Українська"],
  ["ru", "Русский"], ["ro", "Română"], ["tr", "Türkçe"], ["fa", "فارسی"], ["fa-AF", "دری"], ["ps", "پښتو"],
  ["vi", "Tiếng Việt"], ["es", "Español"], ["pt", "Português"], ["it", "Italiano"], ["de", "Deutsch"],
  ["pl", "Polski"], ["sq", "Shqip"], ["ka", "ქართული"], ["hy", "Հայերեն"], ["am", "አማርኛ"],
  ["so", "Soomaali"], ["bn", "বাংলা"], ["ta", "தமிழ்"], ["ur", "اردو"], ["zh", "中文"],
  ["ti", "ትግርኛ"], ["ku", "Kurdî"], ["ckb", "کوردی"], ["ln", "Lingála"], ["wo", "Wolof"], ["bm", "Bamanankan"],
  ["ff", "Pulaar"], ["ht", "Kreyòl ayisyen"], ["sr", "Српски"], ["hr", "Hrvatski"], ["bs", "Bosanski"],
];
const RTL = new Set(["ar", "fa", "prs", "ps", "ur", "he", "yi", "ckb"]);
const NAMES = Object.fromEntries(LANGUAGES);
const $ = (id) => document.getElementById(id);

const state = {
  ws: null, running: false, retries: 0, retryTimer: null,
  audio: null, streams: [], node: null, // node: held so the worklet is not collected
  utterances: new Map(), // key "party:index" -> {party, index, text, translation, ...}
  visitorLanguage: "", size: 1.25,
};

function status(text, warn = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("warn", warn);
}

function languageName(code) {
  if (NAMES[code]) return NAMES[code];
  try {  // the language's name in itself, e.g. "македонски" for mk
    const name = new Intl.DisplayNames([code], { type: "language" }).of(code);
    if (name && name !== code) return name.charAt(0).toLocaleUpperCase(code) + name.slice(1);
  } catch (error) { /* a tag the browser does not know */ }
  return code;
}
function direction(code) { return RTL.has((code || "").split("-")[0]) ? "rtl" : "ltr"; }

function addLanguage(select, code, name, note = "") {
  const option = document.createElement("option");
  option.value = code;
  option.textContent = note ? `${name} — ${note}` : name;  // the note, in French, for the agent
  if (code !== "detect") { option.lang = code; option.dir = direction(code); }
  select.appendChild(option);
}

// Only the languages the installed models serve both ways with French (GET /langues).
async function fillLanguages() {
  const select = $("visitor-language");
  addLanguage(select, "detect", NAMES.detect);
  select.addEventListener("change", showVisitorLanguage);
  showVisitorLanguage();
  try {
    const response = await fetch("/langues", { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.erreur || response.statusText);
    const offers = body.langues.map((o) => ({ ...o, name: languageName(o.code) }));
    offers.sort((a, b) => a.name.localeCompare(b.name));
    for (const offer of offers) {
      addLanguage(select, offer.code, offer.name, offer.pivot ? "(via l'anglais)" : "");
    }
    if (!offers.length) {
      status("Aucun modèle de traduction installé : la conversation sera transcrite sans traduction.", true);
    }
  } catch (error) {
    status(`Liste des langues indisponible (${error.message}) : « Détecter » reste possible.`, true);
  }
}

function showVisitorLanguage() {
  const code = state.visitorLanguage || $("visitor-language").value;
  $("visitor-language-name").textContent = code === "detect" ? "(langue à détecter)" : languageName(code);
  $("visitor-log").lang = code === "detect" ? "" : code;
}

// ------------------------------------------------------------------ the conversation

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const key = new URLSearchParams(location.search).get("cle");
  return `${scheme}//${location.host}/ws` + (key ? `?cle=${encodeURIComponent(key)}` : "");
}

function startMessage() {
  return JSON.stringify({ type: "start", agent: "fr", visitor: $("visitor-language").value,
    microphones: Number($("microphones").value) });
}

function connect() {
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = () => {
    state.retries = 0;
    ws.send(startMessage());
  };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (event.code === 4001 || event.code === 4003) { stopAudio(); setRunning(false); return; }
    if (state.running) retry("Connexion perdue avec le poste. Nouvelle tentative…");
  };
}

function retry(message) {
  const delay = Math.min(30, 2 ** state.retries) * 1000;
  state.retries += 1;
  status(`${message} (dans ${Math.round(delay / 1000)} s)`, true);
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(() => { if (state.running) connect(); }, delay);
}

function onMessage(message) {
  switch (message.type) {
    case "ready":
      status(message.microphones === 2 ? "En écoute (deux microphones)." : "En écoute (microphone partagé).");
      break;
    case "utterance": showUtterance(message); break;
    case "cleared": status("Nouvel usager : la conversation précédente est effacée."); break;
    case "ended": if (state.running) connectAgain(); break;
    case "error":
      if (message.retry && state.running) {
        if (state.ws) state.ws.close();
        state.ws = null;
        retry(message.message);
      } else {
        status(message.message, true);
      }
      break;
  }
}

function connectAgain() { if (state.ws) state.ws.close(); state.ws = null; connect(); }

function showUtterance(u) {
  const key = `${u.party}:${u.index}:${u.start}`;
  const interimKey = `${u.party}:interim`;
  if (!u.final) {
    state.utterances.set(interimKey, u);
  } else {
    state.utterances.delete(interimKey);
    state.utterances.set(key, u);
    if (u.party === "visitor" && u.language && $("visitor-language").value === "detect") {
      state.visitorLanguage = u.language;
      showVisitorLanguage();
    }
  }
  render();
}

function paragraph(text, className, lang) {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  if (lang) { p.lang = lang; p.dir = direction(lang); }
  return p;
}

function render() {
  const logs = { agent: $("agent-log"), visitor: $("visitor-log") };
  const other = { agent: "visitor", visitor: "agent" };
  for (const log of Object.values(logs)) log.replaceChildren();
  const items = [...state.utterances.values()].sort((a, b) => a.start - b.start);
  for (const u of items) {
    logs[u.party].appendChild(paragraph(u.text, u.final ? "said" : "said interim", u.language));
    if (!u.final) continue;
    if (u.translation) {
      logs[other[u.party]].appendChild(paragraph(u.translation, "translation", u.translation_language));
    } else if (u.translation_error) {
      logs[other[u.party]].appendChild(paragraph(`(${u.translation_error})`, "note", "fr"));
    }
  }
  for (const log of Object.values(logs)) log.scrollTop = log.scrollHeight;
}

// ------------------------------------------------------------------ audio

async function listDevices() {
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput");
  for (const id of ["agent-device", "visitor-device"]) {
    const select = $(id);
    select.replaceChildren(...devices.map((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || `Microphone ${i + 1}`;
      return option;
    }));
  }
  if (devices.length > 1) $("visitor-device").selectedIndex = 1;
}

// Two microphones are either two devices, or one two-channel device (a stereo USB
// interface, left the agent, right the visitor) chosen for both parties. A stereo input
// is opened without the browser's voice processing, which would mix its channels.
function audioConstraints(deviceId, channels) {
  const processing = channels === 1;
  return { audio: { deviceId: deviceId ? { exact: deviceId } : undefined, channelCount: channels,
    echoCancellation: processing, noiseSuppression: processing, autoGainControl: processing } };
}

async function openStreams(two) {
  const agent = $("agent-device").value, visitor = $("visitor-device").value;
  if (!two) return [await navigator.mediaDevices.getUserMedia(audioConstraints(null, 1))];
  if (agent === visitor) {
    const stream = await navigator.mediaDevices.getUserMedia(audioConstraints(agent, 2));
    if (stream.getAudioTracks()[0].getSettings().channelCount === 1) {
      stream.getTracks().forEach((t) => t.stop());
      throw Object.assign(new Error("mono"), { name: "MonoDeviceError" });
    }
    return [stream];
  }
  const streams = [];
  for (const id of [agent, visitor]) streams.push(await navigator.mediaDevices.getUserMedia(audioConstraints(id, 1)));
  return streams;
}

async function startAudio() {
  const two = $("microphones").value === "2";
  state.streams = await openStreams(two);
  let context;
  try { context = new AudioContext({ sampleRate: 16000 }); } catch (e) { context = new AudioContext(); }
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const node = new AudioWorkletNode(context, "pcm-frames", {
    numberOfInputs: 1, channelCount: two ? 2 : 1, channelCountMode: "explicit",
    channelInterpretation: two ? "discrete" : "speakers", processorOptions: { channels: two ? 2 : 1 },
  });
  if (state.streams.length === 2) {
    const merger = context.createChannelMerger(2);
    state.streams.forEach((s, i) => context.createMediaStreamSource(s).connect(merger, 0, i));
    merger.connect(node);
  } else {
    context.createMediaStreamSource(state.streams[0]).connect(node);
  }
  node.port.onmessage = (event) => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(event.data);
  };
  state.audio = context;
  state.node = node;
}

function stopAudio() {
  for (const s of state.streams) s.getTracks().forEach((t) => t.stop());
  state.streams = [];
  if (state.audio) state.audio.close();
  state.audio = null;
  state.node = null;
}

function microphoneError(error) {
  if (error && (error.name === "NotAllowedError" || error.name === "SecurityError"))
    return "Le microphone est refusé. Autorisez-le pour cette page dans le navigateur, puis « Démarrer ».";
  if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError"))
    return "Aucun microphone trouvé. Branchez un microphone, puis « Démarrer ».";
  if (error && error.name === "MonoDeviceError")
    return "Ce microphone n'a qu'une voie : choisissez deux microphones différents pour l'agent et l'usager.";
  return "Le microphone n'a pas pu être ouvert.";
}

function setRunning(running) {
  state.running = running;
  const button = $("start");
  button.setAttribute("aria-pressed", String(running));
  button.firstChild.textContent = running ? "Arrêter " : "Démarrer ";
}

async function toggle() {
  if (state.running) {
    setRunning(false);
    clearTimeout(state.retryTimer);
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "stop" }));
    stopAudio();
    status("Arrêté. Les échanges restent affichés jusqu'à « Nouvel usager ».");
    return;
  }
  try {
    await startAudio();
  } catch (error) {
    stopAudio();
    status(microphoneError(error), true);
    return;
  }
  setRunning(true);
  status("Connexion…");
  connect();
}

function newVisitor() {
  state.utterances.clear();
  state.visitorLanguage = "";
  showVisitorLanguage();
  render();
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "new" }));
    if (state.running) state.ws.send(startMessage());
  } else {
    status("Nouvel usager : la conversation précédente est effacée.");
  }
}

// ------------------------------------------------------------------ export, display

function finals() { return [...state.utterances.values()].filter((u) => u.final).sort((a, b) => a.start - b.start); }

function srtTime(seconds) {
  const ms = Math.round(seconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}:${pad(Math.floor(ms / 1000) % 60)},${pad(ms % 1000, 3)}`;
}

function exportText(format) {
  const who = { agent: "Agent", visitor: "Usager" };
  const items = finals();
  if (format === "json") return JSON.stringify(items, null, 2);
  if (format === "srt") {
    return items.map((u, i) => `${i + 1}\n${srtTime(u.start)} --> ${srtTime(u.end)}\n${who[u.party]} : ${u.text}` +
      (u.translation ? `\n(${u.translation})` : "") + "\n").join("\n");
  }
  return items.map((u) => `[${who[u.party]}] ${u.text}` + (u.translation ? `\n    → ${u.translation}` : "")).join("\n");
}

function exportConversation() {
  const format = $("export-format").value;
  const types = { txt: "text/plain", json: "application/json", srt: "application/x-subrip" };
  const blob = new Blob([exportText(format)], { type: `${types[format]};charset=utf-8` });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `conversation.${format}`;
  link.click();
  URL.revokeObjectURL(link.href);
}

function fullscreen() {
  const panel = $("visitor-panel");
  if (document.fullscreenElement) document.exitFullscreen();
  else if (panel.requestFullscreen) panel.requestFullscreen();
}

function fontSize(delta) {
  state.size = Math.max(0.9, Math.min(3, state.size + delta));
  document.documentElement.style.setProperty("--size", `${state.size}rem`);
}

function shortcuts(event) {
  if (!event.altKey) return;
  const actions = { d: toggle, n: newVisitor, p: fullscreen, e: exportConversation,
    "-": () => fontSize(-0.15), "=": () => fontSize(0.15), "+": () => fontSize(0.15) };
  const action = actions[event.key.toLowerCase()];
  if (action) { event.preventDefault(); action(); }
}

function init() {
  fillLanguages();
  $("start").addEventListener("click", toggle);
  $("new").addEventListener("click", newVisitor);
  $("fullscreen").addEventListener("click", fullscreen);
  $("export").addEventListener("click", exportConversation);
  $("smaller").addEventListener("click", () => fontSize(-0.15));
  $("larger").addEventListener("click", () => fontSize(0.15));
  $("microphones").addEventListener("change", async () => {
    const two = $("microphones").value === "2";
    document.querySelectorAll(".device").forEach((el) => { el.hidden = !two; });
    if (two) {
      try { await listDevices(); } catch (error) { status(microphoneError(error), true); }
    }
  });
  document.addEventListener("keydown", shortcuts);
  window.addEventListener("pagehide", () => { if (state.ws) state.ws.close(); });
  if (!window.isSecureContext) status("Page non sécurisée : le navigateur refusera le microphone (HTTPS requis).", true);
}

document.addEventListener("DOMContentLoaded", init);
window.parlonsDesk = { state, exportText }; // for the tests and the curious agent
