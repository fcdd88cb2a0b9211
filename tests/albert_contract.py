"""What Albert API does with a provider of its own type ("albert"), line for line.

Taken from etalab-ia/albert-api at commit 3c7b965 (MIT licence), so a change on parlons'
side that Albert cannot read fails here rather than at an administration:
- registration, `app/clients/model/_albertmodelclient.py` `AlbertModelClient.__init__`:
  GET /v1/models with its bearer key, the entry whose `id` is the configured model name
  or whose `aliases` hold it (exactly one), then POST /v1/embeddings to size vectors
  (anything but 200 leaves it None);
- a transcription, `app/endpoints/audio.py` `audio_transcriptions` and
  `app/clients/model/_basemodelclient.py` `forward_request`: a multipart POST by httpx
  with the file and `model`, `response_format` (json or text: the only two it allows),
  `temperature`, `timestamp_granularities` and, when the user gave one, `language` as the
  user wrote it (a code or an English name, `app/schemas/audio.py`); an error status is
  read as JSON and its `message` kept when there is one; a json answer is parsed into
  its `AudioTranscription` (OpenAI's `Transcription` with an `id`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from json import JSONDecodeError, loads
from typing import Any
from urllib.parse import urljoin

import httpx
import requests
from openai.types.audio import Transcription
from pydantic import Field

DEFAULT_TIMEOUT = 300  # app/utils/variables.py


class AudioTranscription(Transcription):  # app/schemas/audio.py
    id: str = Field(default=None, description="A unique identifier for the audio transcription.")  # type: ignore[assignment]


class AlbertHTTPError(Exception):
    """What Albert raises (FastAPI's HTTPException) and so what its user receives."""

    def __init__(self, status_code: int, detail: Any) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@dataclass
class AlbertProvider:
    """A `ModelProvider` of type albert in Albert's configuration: url (no /v1), key,
    timeout and the model name on the provider's side."""

    url: str
    key: str
    model_name: str
    timeout: int = DEFAULT_TIMEOUT
    max_context_length: int | None = None
    vector_size: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def register(self) -> None:
        """AlbertModelClient.__init__: raises AssertionError (Albert then skips the model)."""
        url = urljoin(base=str(self.url), url="/v1/models")
        response = requests.get(url=url, headers=self.headers, timeout=self.timeout)
        assert response.status_code == 200, f"Failed to get models list ({response.status_code})."
        data = response.json()["data"]
        data = [model for model in data if model["id"] == self.model_name or self.model_name in model["aliases"]]
        assert len(data) == 1, f"Model not found ({self.model_name})."
        self.max_context_length = data[0].get("max_context_length")
        embeddings = requests.post(
            url=urljoin(base=self.url, url="/v1/embeddings"),
            headers=self.headers,
            json={"model": self.model_name, "input": "hello world"},
            timeout=self.timeout,
        )
        if embeddings.status_code == 200:
            self.vector_size = len(embeddings.json()["data"][0]["embedding"])
        else:
            self.vector_size = None

    async def transcribe(self, filename: str, content: bytes, content_type: str, *, language: str = "",
                         response_format: str = "json", temperature: float = 0) -> AudioTranscription | str:
        """audio_transcriptions + forward_request, as Albert runs them."""
        payload: dict[str, Any] = {
            "model": self.model_name,
            "response_format": response_format,
            "temperature": temperature,
            "timestamp_granularities": ["segment"],
        }
        if language != "":
            payload["language"] = language
        url = urljoin(base=self.url, url="/v1/audio/transcriptions")
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            try:
                response = await client.request(method="POST", url=url, headers=self.headers,
                                                files={"file": (filename, content, content_type)}, data=payload)
            except httpx.TimeoutException:
                raise AlbertHTTPError(504, "Request timed out, model is too busy.") from None
            try:
                response.raise_for_status()
            except httpx.HTTPStatusError:
                try:
                    message = loads(response.text)
                    if "message" in message:
                        try:
                            message = ast.literal_eval(message["message"])
                        except Exception:
                            message = message["message"]
                except JSONDecodeError:
                    message = response.text
                raise AlbertHTTPError(response.status_code, message) from None
        if response_format == "text":
            return response.text
        return AudioTranscription(**response.json())
