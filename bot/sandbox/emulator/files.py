"""Files: ids for what users send and the bot uploads, `getFile`, and the download URL."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from bot.sandbox.emulator.protocol import ApiError, Json, bad, json_response
from bot.sandbox.emulator.state import EmulatorState


class FileStore(EmulatorState):
    """Every file the emulator has seen, by file id."""

    def _new_file(self, kind: str, meta: Json | None = None, content: bytes | None = None) -> Json:
        n = next(self._file_ids)
        prefix = {
            "photo": "AgAC",
            "document": "BQAC",
            "voice": "AwAC",
            "video": "BAAC",
            "sticker": "CAAC",
            "audio": "CQAC",
            "animation": "CgAC",
        }.get(kind, "BQAC")
        obj: Json = {"file_id": f"{prefix}fake{n:06d}", "file_unique_id": f"AQAD{n:06d}"}
        if content is not None:
            obj["file_size"] = len(content)
        defaults: dict[str, Json] = {
            "photo": {"width": 1280, "height": 720},
            "video": {"width": 1280, "height": 720, "duration": 5},
            "animation": {"width": 320, "height": 240, "duration": 2},
            "voice": {"duration": 3, "mime_type": "audio/ogg"},
            "audio": {"duration": 60},
            "video_note": {"length": 240, "duration": 3},
            "sticker": {
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        }
        obj.update(defaults.get(kind, {}))
        obj.update(meta or {})
        self._files[obj["file_id"]] = {"kind": kind, "obj": obj, "content": content or b""}
        return obj

    def _file_from_param(
        self, kind: str, value: Any, files: Json, meta: Json | None = None
    ) -> Json:
        """Resolve an InputFile-ish parameter: upload, attach://name, URL or file_id."""
        if isinstance(value, dict) and "content" in value:  # an uploaded part
            m = (
                {"file_name": value["filename"]}
                if kind in {"document", "audio", "video", "animation"}
                else {}
            )
            if kind == "document":
                m["mime_type"] = value.get("content_type") or guess_mime(value["filename"])
            return self._new_file(kind, {**m, **(meta or {})}, value["content"])
        if not isinstance(value, str) or not value:
            raise bad(f"there is no {kind} in the request")
        if value.startswith("attach://"):
            part = files.get(value[len("attach://") :])
            if part is None:
                raise bad(f"wrong file identifier/HTTP URL specified ({value} not attached)")
            return self._file_from_param(kind, part, files, meta)
        if re.match(r"https?://", value):
            name = value.rsplit("/", 1)[-1] or "file"
            m = {"file_name": name} if kind == "document" else {}
            return self._new_file(kind, {**m, **(meta or {})})
        entry = self._files.get(value)
        if entry is None:
            raise bad("wrong file identifier/HTTP URL specified")
        if entry["kind"] != kind and {entry["kind"], kind} != {"document", "animation"}:
            raise bad(f"can't use file of type {entry['kind'].title()} as {kind.title()}")
        return dict(entry["obj"])

    def _m_getFile(self, p: Json) -> Json:
        entry = self._files.get(str(p.get("file_id") or ""))
        if entry is None:
            raise bad("invalid file_id")
        entry.setdefault(
            "path", f"{entry['kind']}s/file_{len(self._files)}_{entry['obj']['file_unique_id']}"
        )
        obj = {
            k: entry["obj"][k]
            for k in ("file_id", "file_unique_id", "file_size")
            if k in entry["obj"]
        }
        obj["file_path"] = entry["path"]
        return obj

    def _m_getUserProfilePhotos(self, p: Json) -> Json:
        return {"total_count": 0, "photos": []}

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if self.token is not None and token != self.token:
            return json_response(ApiError(401, "Unauthorized").body(), 401)
        path = request.match_info["path"]
        for entry in self._files.values():
            if entry.get("path") == path:
                return web.Response(body=entry["content"] or b"\0" * 16)
        return json_response(ApiError(404, "Not Found").body(), 404)


def guess_mime(name: str) -> str:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "pdf": "application/pdf",
        "txt": "text/plain",
        "log": "text/plain",
        "png": "image/png",
        "jpg": "image/jpeg",
        "jpeg": "image/jpeg",
        "zip": "application/zip",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }.get(ext, "application/octet-stream")
