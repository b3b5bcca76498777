"""Whatever is uploaded or typed: the images come back right, or a 400 that names the field."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from handlers.hosts.local import create_local_app
from handlers.http_errors import http_status
from handlers.images.uploads import read_edit_input
from pipelines.contract.errors import APIError
from tests.conftest import png, png_bytes
from tests.test_edit import HOLE, changed_box, inside, mask_with_hole, noise

SIZE = (64, 64)


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format=format, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_16_bit(image: Image.Image) -> bytes:
    """`image` (L, RGB or RGBA) as a 16-bit PNG: each 8-bit value v becomes v * 256 + noise below it."""
    color_type = {"L": 0, "RGB": 2, "RGBA": 6}[image.mode]
    channels = len(image.mode)
    raw = image.tobytes()
    rows = []
    for y in range(image.height):
        row = raw[y * image.width * channels : (y + 1) * image.width * channels]
        # The low byte differs per sample, so a reader that used it would show.
        rows.append(b"\x00" + b"".join(struct.pack(">H", value * 256 + (i * 37) % 256) for i, value in enumerate(row)))
    header = struct.pack(">IIBBBBB", image.width, image.height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _chunk(b"IEND", b"")
    )


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds no pixels at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def edit(
    api: TestClient,
    image: bytes,
    mask: bytes | None = None,
    name: str = "photo.png",
    content_type: str = "image/png",
    **fields: str,
):
    files = {"image": (name, image, content_type)}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    data = {"prompt": "a red door", "model": "tiny-sd", "response_format": "b64_json", **fields}
    return api.post("/v1/images/edits", files=files, data=data)


def edited(api: TestClient, image: bytes, mask: bytes | None = None, **fields: str) -> Image.Image:
    response = edit(api, image, mask, **fields)
    assert response.status_code == 200, response.text
    return png(base64.b64decode(response.json()["data"][0]["b64_json"]))


# --- modes: each is edited, and every pixel outside the area comes back as it was ------------


def _palette_with_hole(transparency: str) -> tuple[bytes, Image.Image]:
    """A palette image whose spare entry 255 is transparent and fills the hole."""
    image = noise(SIZE).quantize(255)
    palette = [*image.getpalette()[: 255 * 3], 0, 0, 0]
    image.putpalette(palette)
    image.paste(255, HOLE)
    if transparency == "index":
        data = encode(image, transparency=255)
    else:  # a per-entry alpha table; some entries half transparent, which must be kept
        data = encode(image, transparency=bytes([255, 128] * 127 + [255, 0]))
    return data, decoded(data).convert("RGBA")


def _colour_key_with_hole() -> tuple[bytes, Image.Image]:
    image = noise(SIZE).point(lambda value: max(value, 4))  # so the key colour appears only in the hole
    image.paste((1, 2, 3), HOLE)
    data = encode(image, transparency=(1, 2, 3))
    expected = image.convert("RGBA")
    expected.paste((1, 2, 3, 0), HOLE)
    return data, expected


def _la_with_hole() -> tuple[bytes, Image.Image]:
    grey = noise(SIZE, "L")
    alpha = Image.new("L", SIZE, 255)
    alpha.paste(128, (0, 0, 16, 16))  # half transparent: kept as it is
    alpha.paste(0, HOLE)
    image = Image.merge("LA", (grey, alpha))
    return encode(image), image.convert("RGBA")


def _animated(format: str) -> tuple[bytes, Image.Image]:
    first, second = noise(SIZE), noise(SIZE)
    options = {"lossless": True} if format == "WEBP" else {}
    data = encode(first, format, save_all=True, append_images=[second], duration=100, **options)
    return data, first


def _mpo() -> tuple[bytes, Image.Image]:
    first, second = noise(SIZE), noise(SIZE)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    return data, decoded(data).convert("RGB")  # its first picture, as any JPEG reader decodes it


def _jpeg(mode: str) -> tuple[bytes, Image.Image]:
    data = encode(noise(SIZE).convert(mode), "JPEG")
    return data, decoded(data).convert("RGB")


def _sixteen_bit(mode: str) -> tuple[bytes, Image.Image]:
    image = noise(SIZE, mode)
    # 16-bit samples come back as their high byte: the 8-bit image they were made from.
    return png_16_bit(image), image.convert("RGBA" if mode == "RGBA" else "RGB")


def _plain(mode: str) -> tuple[bytes, Image.Image]:
    image = noise(SIZE).convert(mode)
    return encode(image), image.convert("RGB")


def _webp_with_alpha() -> tuple[bytes, Image.Image]:
    image = noise(SIZE, "RGBA")
    image.putalpha(image.getchannel("A").point(lambda a: max(a, 1)))  # translucent, never fully transparent
    return encode(image, "WEBP", lossless=True), image


# name -> (upload, the picture the caller expects back outside the area, whether a mask is sent)
MODES: dict[str, tuple[Callable[[], tuple[bytes, Image.Image]], bool]] = {
    "greyscale PNG (L)": (lambda: _plain("L"), True),
    "bilevel PNG (1)": (lambda: _plain("1"), True),
    "palette PNG (P)": (lambda: _plain("P"), True),
    "translucent RGBA WEBP": (_webp_with_alpha, True),
    "greyscale JPEG": (lambda: _jpeg("L"), True),
    "CMYK JPEG": (lambda: _jpeg("CMYK"), True),
    "16-bit greyscale PNG (I;16)": (lambda: _sixteen_bit("L"), True),
    "16-bit RGB PNG": (lambda: _sixteen_bit("RGB"), True),
    "16-bit RGBA PNG": (lambda: _sixteen_bit("RGBA"), True),
    "animated PNG (first frame)": (lambda: _animated("PNG"), True),
    "animated WEBP (first frame)": (lambda: _animated("WEBP"), True),
    "MPO JPEG (first picture)": (_mpo, True),
    # No mask: the image's own transparency marks the area.
    "palette PNG, transparent index": (lambda: _palette_with_hole("index"), False),
    "palette PNG, alpha table": (lambda: _palette_with_hole("table"), False),
    "greyscale + alpha PNG (LA)": (_la_with_hole, False),
    "RGB PNG with a transparent colour key (tRNS)": (_colour_key_with_hole, False),
}


@pytest.mark.parametrize("name", list(MODES))
def test_every_mode_is_edited_and_keeps_its_unedited_pixels(api: TestClient, name: str) -> None:
    make, with_mask = MODES[name]
    upload, expected = make()
    mask = png_bytes(mask_with_hole(SIZE)) if with_mask else None
    result = edited(api, upload, mask, num_inference_steps="2")
    assert result.size == SIZE
    assert result.mode == expected.mode
    box = changed_box(expected, result)
    assert box is not None, "the area was not repainted"
    assert inside(box, HOLE), f"pixels outside the area changed: {box}"
    if expected.mode == "RGBA":
        assert result.crop(HOLE).getchannel("A").getextrema() == (255, 255)  # the hole is filled, opaque


@pytest.mark.parametrize(
    "mask_mode",
    ["LA", "P with a transparent index", "16-bit RGBA"],
)
def test_masks_in_other_modes_mark_the_same_area(api: TestClient, mask_mode: str) -> None:
    original = noise(SIZE)
    rgba = mask_with_hole(SIZE)
    if mask_mode == "LA":
        mask = encode(rgba.convert("LA"))
    elif mask_mode == "16-bit RGBA":
        mask = png_16_bit(rgba)
    else:
        palette = Image.new("P", SIZE, 0)
        palette.putpalette([0, 0, 0, 255, 255, 255])
        palette.paste(1, HOLE)
        mask = encode(palette, transparency=1)
    result = edited(api, png_bytes(original), mask)
    box = changed_box(original, result)
    assert box is not None and inside(box, HOLE)


@pytest.mark.parametrize("mode", ["L", "1", "16-bit greyscale"])
def test_a_mask_with_no_transparency_is_a_400_naming_mask(api: TestClient, mode: str) -> None:
    grey = Image.new("L", SIZE, 255)
    mask = png_16_bit(grey) if mode == "16-bit greyscale" else encode(grey.convert(mode))
    response = edit(api, png_bytes(noise(SIZE)), mask)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "mask"
    assert response.json()["error"]["code"] == "invalid_mask"


# --- the type comes from the bytes -------------------------------------------------------------


def test_the_type_is_read_from_the_content_not_the_name_or_content_type(api: TestClient) -> None:
    jpeg = encode(noise(SIZE), "JPEG")
    assert edit(api, png_bytes(noise(SIZE)), name="photo.jpg", content_type="image/jpeg").status_code == 200
    assert edit(api, jpeg, name="photo.png", content_type="application/octet-stream").status_code == 200
    gif_named_png = edit(api, encode(noise(SIZE), "GIF"), name="photo.png", content_type="image/png")
    assert gif_named_png.status_code == 400
    assert gif_named_png.json()["error"]["code"] == "invalid_image_format"


def _gif() -> bytes:
    frames = [noise(SIZE), noise(SIZE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def _half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _broken_crc() -> bytes:
    data = bytearray(png_bytes(noise(SIZE)))
    data[len(data) // 2] ^= 0xFF  # inside the pixel data: its checksum no longer matches
    return bytes(data)


REFUSED = {
    "empty": (b"", "invalid_image", "empty"),
    "text": (b"just some text, not a picture", "invalid_image", "not a PNG, JPEG or WEBP"),
    "HTML": (b"<!doctype html><script>alert(1)</script>", "invalid_image", "not a PNG, JPEG or WEBP"),
    "SVG": (b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>', "invalid_image_format", "SVG"),
    "GIF (animated)": (_gif(), "invalid_image_format", "GIF"),
    "BMP": (encode(noise(SIZE), "BMP"), "invalid_image_format", "BMP"),
    "TIFF": (encode(noise(SIZE), "TIFF"), "invalid_image_format", "TIFF"),
    "PDF": (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "invalid_image_format", "PDF"),
    "HEIC": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "invalid_image_format", "HEIC"),
    "PNG signature, then garbage": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "invalid_image", "PNG"),
    "truncated PNG": (_half(png_bytes(noise(SIZE))), "invalid_image", "truncated"),
    "truncated JPEG": (_half(encode(noise(SIZE), "JPEG")), "invalid_image", "truncated"),
    "truncated WEBP": (_half(encode(noise(SIZE), "WEBP")), "invalid_image", "WEBP"),
    "PNG with a broken checksum": (_broken_crc(), "invalid_image", "damaged"),
    "PNG header with no pixel data": (png_header_only(64, 64), "invalid_image", "truncated"),
}


@pytest.mark.parametrize("name", list(REFUSED))
@pytest.mark.parametrize("param", ["image", "mask"])
def test_unusable_files_are_a_400_that_names_the_field_and_says_why(api: TestClient, name: str, param: str) -> None:
    data, code, said = REFUSED[name]
    if param == "image":
        response = edit(api, data, name="photo.png")
    else:
        response = edit(api, png_bytes(noise(SIZE)), mask=data)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert said in error["message"]


# --- decompression bombs: refused from the header, before any decoding ------------------------


def _bomb(width: int, height: int) -> bytes:
    # Bilevel and all one value: 20000x20000 compresses to ~50 KB and would decode to 400 MB.
    return encode(Image.new("1", (width, height)), optimize=True)


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8000, 6000),  # past our 40 MP default, under Pillow's own guard
        (10000, 10000),  # past Pillow's warning threshold (a warning is an error under pytest)
        (20000, 20000),  # past Pillow's error threshold
    ],
)
def test_images_with_too_many_pixels_are_a_400_and_cheap(api: TestClient, width: int, height: int) -> None:
    bomb = _bomb(width, height)
    started = time.monotonic()
    response = edit(api, bomb)
    assert time.monotonic() - started < 2.0
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("image", "image_too_large")
    assert "40,000,000 pixels" in error["message"]


def test_the_pixel_check_comes_before_decoding(api: TestClient) -> None:
    """A header claiming 50 MP with no pixel data: refused for its size, never decoded as truncated."""
    response = edit(api, png_header_only(10000, 5000))
    assert response.json()["error"]["code"] == "image_too_large"
    assert "10000x5000" in response.json()["error"]["message"]
    mask = edit(api, png_bytes(noise(SIZE)), mask=png_header_only(10000, 5000))
    assert (mask.json()["error"]["param"], mask.json()["error"]["code"]) == ("mask", "image_too_large")


def test_the_pixel_limit_is_a_parameter() -> None:
    data = png_bytes(noise(SIZE))
    assert read_edit_input(data, None, max_pixels=64 * 64).size == SIZE
    with pytest.raises(APIError) as caught:
        read_edit_input(data, None, max_pixels=64 * 64 - 1)
    assert (http_status(caught.value), caught.value.param, caught.value.code) == (400, "image", "image_too_large")


def test_the_pixel_limit_is_the_setting(make_settings) -> None:
    with TestClient(create_local_app(make_settings(models="tiny-sd", max_image_pixels=64 * 64 - 1))) as api:
        response = edit(api, png_bytes(noise(SIZE)))
    assert response.json()["error"]["code"] == "image_too_large"


# --- fields: every one bounded, wrong types named ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"seed": 2**32}, "seed"),
        ({"seed": "lucky"}, "seed"),
        ({"num_inference_steps": 201}, "num_inference_steps"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"guidance_scale": -0.5}, "guidance_scale"),
        ({"guidance_scale": "strong"}, "guidance_scale"),
        ({"n": "three"}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": [1]}, "n"),
        ({"size": "0x0"}, "size"),
        ({"size": "64x0"}, "size"),
        ({"size": "-64x64"}, "size"),
        ({"size": "1032x1024"}, "size"),
        ({"size": "56x64"}, "size"),
        ({"size": "99999x99999"}, "size"),
        ({"size": "64x64x64"}, "size"),
        ({"size": 64}, "size"),
        ({"prompt": "x" * 32_001}, "prompt"),
        ({"prompt": ["a", "list"]}, "prompt"),
        ({"negative_prompt": "x" * 32_001}, "negative_prompt"),
        ({"user": "u" * 257}, "user"),
        ({"output_compression": 101}, "output_compression"),
        ({"partial_images": 4}, "partial_images"),
        ({"quality": 3}, "quality"),
        ({"response_format": None, "style": ["vivid"]}, "style"),
    ],
)
def test_out_of_range_and_wrongly_typed_fields_are_400s_naming_them(api: TestClient, body: dict, param: str) -> None:
    response = api.post("/v1/images/generations", json={"model": "tiny-sd", "prompt": "a cat", "size": "64x64", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(api: TestClient, literal: str) -> None:
    body = f'{{"prompt": "a cat", "size": "64x64", "guidance_scale": {literal}}}'.encode()
    response = api.post("/v1/images/generations", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "guidance_scale"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"seed": "abc"}, "seed"),
        ({"seed": "-1"}, "seed"),
        ({"guidance_scale": "nan"}, "guidance_scale"),
        ({"guidance_scale": "inf"}, "guidance_scale"),
        ({"num_inference_steps": "2.5"}, "num_inference_steps"),
        ({"n": "0"}, "n"),
        ({"n": "11"}, "n"),
        ({"size": "big"}, "size"),
        ({"response_format": "gif"}, "response_format"),
        ({"prompt": ""}, "prompt"),
    ],
)
def test_form_fields_of_the_wrong_type_or_range_are_400s_naming_them(api: TestClient, fields: dict, param: str) -> None:
    response = edit(api, png_bytes(noise(SIZE)), **fields)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_prompt_sent_as_a_file_is_missing_as_text(api: TestClient) -> None:
    response = api.post(
        "/v1/images/edits",
        files={
            "image": ("a.png", png_bytes(noise(SIZE)), "image/png"),
            "prompt": ("p.txt", b"a red door", "text/plain"),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "prompt"


def test_a_model_name_that_is_not_unicode_is_a_client_error(api: TestClient) -> None:
    body = b'{"prompt": "a cat", "model": "\\ud800"}'
    response = api.post("/v1/images/generations", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
