"""Uploads of edits and variations: read the multipart form, check the images, and turn OpenAI's
mask convention into the Worker's.

The form's fields are validated by the request's schema, its files read here, as the OpenAI SDKs
send them: `image` or `image[]` (up to 16), `mask`, and `lora` as one part or several.

OpenAI: pixels with alpha = 0 in the mask mark the area to edit; with no mask, the image's own
fully transparent pixels do; with neither, the whole image is edited under the prompt.
The Worker gets diffusers' convention: a greyscale PNG, white = repaint, black = keep.

What is accepted is decided from the bytes, never from the file name or the part's content
type: PNG, JPEG and WEBP, any mode Pillow reads from them. The Worker always receives an 8-bit
RGB or RGBA image: uploads already in that form pass through unchanged, anything else
(greyscale, palette, CMYK, 16-bit, colour-keyed transparency, animated) is converted here,
once, so both sides agree on every pixel. An animated PNG or WEBP is edited as its first frame.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from starlette.datastructures import FormData, UploadFile

from handlers.images.budgets import check_count_by_name, check_decode_budget
from handlers.images.schemas import MAX_INPUT_IMAGES, ImageRequestBase
from handlers.settings import ServerSettings
from pipelines.contract import pictures
from pipelines.contract.errors import APIError, invalid
from pipelines.contract.model_spec import Task
from pipelines.contract.served import ServedModels

# What Pillow may open. A JPEG with a second picture (a phone's depth map) opens as MPO, whose
# first frame is the photo.
_FORMATS = ("PNG", "JPEG", "WEBP")
# Formats people upload that we do not take, so the error can say what was sent.
_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
)
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}

DEFAULT_MAX_PIXELS: int = ServerSettings.model_fields["max_image_pixels"].default
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
Form = TypeVar("Form", bound=ImageRequestBase)


@dataclass(frozen=True)
class EditInput:
    image: bytes  # PNG, JPEG or WEBP whose decoded mode is RGB or RGBA
    size: tuple[int, int]
    mask: bytes | None  # diffusers convention; None: edit the whole image
    references: tuple[bytes, ...] = ()  # the other images, as the model may use them (RGB or RGBA)


def _sniff(data: bytes) -> str | None:
    """The name of a known image format we do not accept, from its first bytes."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    if data[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(data[8:12])
    if data.lstrip()[:5].lower() in (b"<svg ", b"<?xml"):
        return "SVG"
    return None


def _open(data: bytes, param: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded upload (its first frame), or a 400 naming `param` that says what is wrong.

    The pixel count comes from the header and is checked before the bitmap is decoded, so a
    small file that claims a huge image (a decompression bomb) costs nothing.
    """
    if not data:
        raise invalid(param, f"The '{param}' file is empty.", code="invalid_image")
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        other = _sniff(data)
        if other is not None:
            raise invalid(
                param, f"The '{param}' file is {other}; use PNG, JPEG or WEBP.", code="invalid_image_format"
            ) from None
        raise invalid(
            param,
            f"The '{param}' file is not a PNG, JPEG or WEBP image (the type is read from the "
            "file's content, not its name).",
            code="invalid_image",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own guard, above ours; a warning is an exception only where warnings are
        # errors (the tests), elsewhere the header check below refuses the same image.
        raise _too_many_pixels(param, None, max_pixels) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _unreadable(param) from exc
    if image.width * image.height > max_pixels:
        raise _too_many_pixels(param, image.size, max_pixels)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated, corrupt
        raise _unreadable(param) from exc
    return image


def _unreadable(param: str) -> APIError:
    return invalid(
        param,
        f"The '{param}' file is damaged or truncated: it is not a readable PNG, JPEG or WEBP image.",
        code="invalid_image",
    )


def _too_many_pixels(param: str, size: tuple[int, int] | None, max_pixels: int) -> APIError:
    what = "is too large" if size is None else f"is {size[0]}x{size[1]} ({size[0] * size[1]:,} pixels)"
    return invalid(param, f"The '{param}' image {what}; the limit is {max_pixels:,} pixels.", code="image_too_large")


def _for_worker(image: Image.Image, data: bytes) -> tuple[Image.Image, bytes]:
    """The image as the Worker will see it (RGB or RGBA) and the bytes to send it."""
    animated = getattr(image, "is_animated", False)
    if image.mode in ("RGB", "RGBA") and "transparency" not in image.info and not animated:
        return image, data
    alpha = pictures.has_transparency(image)
    image = pictures.eight_bit(image).convert("RGBA" if alpha else "RGB")
    return image, pictures.png(image)


def _edit_area(alpha: Image.Image) -> Image.Image:
    """White where alpha is exactly 0 (the area to edit), black elsewhere."""
    return alpha.point(lambda a: 255 if a == 0 else 0, mode="L")


def read_edit_input(
    image_data: bytes,
    mask_data: bytes | None,
    *,
    references: list[bytes] | tuple[bytes, ...] = (),
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> EditInput:
    """The checked image, the area of it to edit, and the reference images after it; any
    problem is a 400 naming `image` or `mask`."""
    image, image_bytes = _for_worker(_open(image_data, "image", max_pixels), image_data)
    checked = tuple(_for_worker(_open(data, "image", max_pixels), data)[1] for data in references)
    mask_area: Image.Image | None = None
    if mask_data is not None:
        mask = _open(mask_data, "mask", max_pixels)
        if mask.size != image.size:
            raise invalid(
                "mask",
                f"The mask is {mask.width}x{mask.height} but the image is {image.width}x{image.height}; "
                "they must be the same size.",
                code="mask_size_mismatch",
            )
        alpha = pictures.alpha_channel(mask)
        if alpha is None:
            raise invalid(
                "mask",
                "The mask has no alpha channel: use a PNG whose fully transparent pixels (alpha = 0) mark the area "
                "to edit.",
                code="invalid_mask",
            )
        mask_area = _edit_area(alpha)
    else:
        alpha = pictures.alpha_channel(image)
        if alpha is not None and alpha.getextrema()[0] == 0:
            mask_area = _edit_area(alpha)
    return EditInput(
        image=image_bytes,
        size=image.size,
        mask=None if mask_area is None else pictures.png(mask_area),
        references=checked,
    )


def inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$defs` written in place: a `#/$defs/...` reference means nothing once
    the schema sits inside the OpenAPI document (its root has no `$defs`)."""
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return inline(schema)


def multipart_body(form: type[BaseModel], files: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI description of a multipart body (the routes read the form themselves)."""
    schema = inlined(form.model_json_schema())
    file_schema = inlined(files.model_json_schema())
    schema["properties"] = {**file_schema["properties"], **schema["properties"]}
    schema["required"] = [*file_schema.get("required", []), *schema.get("required", [])]
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


async def _files(form: FormData, names: tuple[str, ...], param: str) -> list[bytes]:
    parts = [part for name in names for part in form.getlist(name)]
    if any(not isinstance(part, UploadFile) for part in parts):
        raise invalid(param, f"'{param}' must be sent as a file part, not as text.", code="invalid_image")
    return [await part.read() for part in parts if isinstance(part, UploadFile)]


async def read_form(
    request: Request,
    model: type[Form],
    max_pixels: int,
    *,
    mask: bool,
    served: ServedModels | None = None,
    max_total_pixels: int | None = None,
) -> tuple[Form, EditInput]:
    """The multipart fields (validated by `model`) and the checked images (and, with `mask`, the mask).

    Before any is decoded: their count against the model the request names (given `served`),
    and the pixels their headers declare against `max_total_pixels`."""
    if not request.headers.get("content-type", "").lower().startswith(_FORMS):
        raise invalid(
            None,
            f"{request.url.path} takes multipart/form-data, as the OpenAI SDKs send it: the image "
            "files and the other fields as form parts (curl: -F image=@photo.png -F prompt=...), not JSON.",
            code="invalid_content_type",
        )
    async with request.form() as form:
        fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
        for name in ("image", "image[]", "mask"):
            fields.pop(name, None)
        # The one field that may come as several parts (the SDKs name a list's parts `lora[]`).
        loras = [value for name in ("lora", "lora[]") for value in form.getlist(name) if isinstance(value, str)]
        fields.pop("lora[]", None)
        if loras:
            fields["lora"] = loras
        body = model.model_validate(fields)
        images = await _files(form, ("image", "image[]"), "image")
        masks = await _files(form, ("mask",), "mask") if mask else []
    task: Task = "edit" if mask else "variation"
    edit = await edit_input(
        images, masks, max_pixels, model=body.model, task=task, served=served, max_total_pixels=max_total_pixels
    )
    return body, edit


async def edit_input(
    images: list[bytes],
    masks: list[bytes],
    max_pixels: int,
    *,
    model: str | None,
    task: Task,
    served: ServedModels | None = None,
    max_total_pixels: int | None = None,
) -> EditInput:
    """An edit's images (the first edited, the others references) and its mask, however they
    arrived (a form, a tool's arguments), checked the one way.

    Before any is decoded: their count against the model the request names (given `served`),
    and the pixels their headers declare against `max_total_pixels`."""
    if not images:
        raise invalid("image", "Missing required parameter: 'image'.", code="missing_required_parameter")
    if len(images) > MAX_INPUT_IMAGES:
        raise invalid(
            "image",
            f"An edit takes at most {MAX_INPUT_IMAGES} images; {len(images)} were sent.",
            code="too_many_images",
        )
    if len(masks) > 1:
        raise invalid("mask", "Send at most one mask.")
    if served is not None:
        check_count_by_name(model, len(images), served, task)
    if max_total_pixels is not None:
        await run_in_threadpool(check_decode_budget, [*images, *masks], max_total_pixels)
    return await run_in_threadpool(
        read_edit_input, images[0], masks[0] if masks else None, references=images[1:], max_pixels=max_pixels
    )
