// stb_image / stb_image_write behind a small interface. Both libraries are compiled here as
// static functions (STB_*_STATIC), so no other file of the project, nor another library
// that embeds stb, can clash with these symbols.
#include "data/image_io.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include "data/dicom_decode.h"
#include "data/jpeg_decode.h"
#include "tensor/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG  // not JPEG: stb 2.27's JPEG decoder is not memory-safe (data/jpeg_decode.h decodes JPEG)
#define STBI_NO_STDIO
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace cxr::data {

std::vector<std::uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  CXR_CHECK(in.good(), "cannot open image file ", path);
  const std::streamsize size = in.tellg();
  CXR_CHECK(size >= 0, "cannot read image file ", path);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), size);
  CXR_CHECK(in.good() || size == 0, "cannot read image file ", path);
  return bytes;
}

namespace {

// Two workarounds for stb_image 2.27 (Debian 12), both found by fuzz/fuzz_image_decode:
//  - an IDAT chunk whose length runs past the end of the file made stb realloc that much
//    (up to 2 GiB from a few bytes) before finding the data missing: refused here, naming it;
//  - a zero-length first IDAT made stb call memcpy(NULL, ..., 0), undefined behaviour an
//    optimiser may turn into a skipped NULL check. Empty IDATs are legal and carry nothing,
//    so they are dropped: `cleaned` gets the file without them (stays empty when none).
// Not a PNG: nothing to do. stb reads no CRCs, so dropping chunks changes nothing else.
void check_png_chunks(const std::uint8_t* p, std::size_t n, const std::string& name,
                      std::vector<std::uint8_t>& cleaned) {
  static const std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n < 8 || std::memcmp(p, kSignature, 8) != 0) return;
  auto u32 = [&](std::size_t k) {
    return static_cast<std::uint32_t>(p[k]) << 24 | static_cast<std::uint32_t>(p[k + 1]) << 16 |
           static_cast<std::uint32_t>(p[k + 2]) << 8 | p[k + 3];
  };
  std::vector<std::size_t> empty;  // offsets of the empty IDAT chunks (12 bytes each)
  for (std::size_t k = 8; k + 8 <= n;) {
    const std::uint32_t length = u32(k);
    const bool idat = std::memcmp(p + k + 4, "IDAT", 4) == 0;
    if (idat && length == 0) empty.push_back(k);
    if (length > n - k - 8) {  // the chunk's data runs past the end of the file
      CXR_CHECK(!idat, "cannot decode image ", name, ": truncated or corrupt PNG: the IDAT chunk at byte ", k,
                " declares ", length, " bytes of data, only ", n - k - 8, " follow");
      break;  // other chunks: stb reports the truncation
    }
    k += 12 + static_cast<std::size_t>(length);
  }
  if (empty.empty()) return;
  cleaned.reserve(n);
  std::size_t from = 0;
  for (std::size_t k : empty) {
    cleaned.insert(cleaned.end(), p + from, p + k);
    from = std::min(k + 12, n);
  }
  cleaned.insert(cleaned.end(), p + from, p + n);
}

}  // namespace

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::png: return "PNG";
    case ImageFormat::jpeg: return "JPEG";
    case ImageFormat::dicom: return "DICOM";
    case ImageFormat::unknown: break;
  }
  return "unknown";
}

const char* window_source_name(WindowSource source) {
  switch (source) {
    case WindowSource::none: return "none";
    case WindowSource::voi_lut: return "VOI LUT";
    case WindowSource::file_window: return "Window Center/Width";
    case WindowSource::percentile: return "percentile 0.5..99.5";
  }
  return "unknown";
}

ImageFormat detect_image_format(const std::uint8_t* p, std::size_t n) {
  static const std::uint8_t kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n >= 8 && std::memcmp(p, kPng, 8) == 0) return ImageFormat::png;
  if (n >= 2 && p[0] == 0xFF && p[1] == 0xD8) return ImageFormat::jpeg;
  if (n >= 132 && std::memcmp(p + 128, "DICM", 4) == 0) return ImageFormat::dicom;
  // A data set written without the preamble: its first element is in the meta group 0002 or the
  // identifying group 0008 (little endian), followed by an explicit VR or a 4-byte length.
  if (n >= 8 && p[1] == 0x00 && (p[0] == 0x02 || p[0] == 0x08) && p[3] == 0x00) {
    const bool explicit_vr = p[4] >= 'A' && p[4] <= 'Z' && p[5] >= 'A' && p[5] <= 'Z';
    const std::uint32_t length = p[4] | p[5] << 8 | p[6] << 16 | static_cast<std::uint32_t>(p[7]) << 24;
    if (explicit_vr || length <= n - 8) return ImageFormat::dicom;
  }
  return ImageFormat::unknown;
}

namespace {

GrayImage decode_png_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name, ImageInfo* info) {
  int len = static_cast<int>(size);
  std::vector<std::uint8_t> cleaned;
  check_png_chunks(bytes, size, name, cleaned);
  if (!cleaned.empty()) {
    bytes = cleaned.data();
    len = static_cast<int>(cleaned.size());
  }
  int w = 0, h = 0, channels = 0;
  // The header alone first: refuse huge images before stb allocates for them.
  if (stbi_info_from_memory(bytes, len, &w, &h, &channels))
    CXR_CHECK(w > 0 && h > 0 && static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) <= kMaxImagePixels,
              "cannot decode image ", name, ": its header says ", w, " x ", h, " pixels, more than the ",
              kMaxImagePixels, "-pixel limit (corrupt file?)");
  GrayImage img;
  const bool sixteen = stbi_is_16_bit_from_memory(bytes, len);
  if (sixteen) {
    std::unique_ptr<stbi_us, void (*)(void*)> p(stbi_load_16_from_memory(bytes, len, &w, &h, &channels, 1),
                                               stbi_image_free);
    CXR_CHECK(p != nullptr, "cannot decode image ", name, ": ", stbi_failure_reason());
    img.width = w;
    img.height = h;
    img.pixels.resize(static_cast<std::size_t>(w) * h);
    // The same range as 8-bit input: 0 -> 0, 65535 -> 255 (a 16-bit copy v * 257 of an 8-bit image decodes to it).
    for (std::size_t i = 0; i < img.pixels.size(); ++i)
      img.pixels[i] = static_cast<std::uint8_t>((p.get()[i] * 255u + 32767u) / 65535u);
  } else {
    std::unique_ptr<stbi_uc, void (*)(void*)> p(stbi_load_from_memory(bytes, len, &w, &h, &channels, 1),
                                               stbi_image_free);
    CXR_CHECK(p != nullptr, "cannot decode image ", name, ": ", stbi_failure_reason());
    img.width = w;
    img.height = h;
    img.pixels.assign(p.get(), p.get() + static_cast<std::size_t>(w) * h);
  }
  if (info) {
    static const char* const kPhotometric[5] = {"", "GRAY", "GRAY+ALPHA", "RGB", "RGBA"};
    info->format = ImageFormat::png;
    info->channels = channels;
    info->photometric = channels >= 1 && channels <= 4 ? kPhotometric[channels] : "";
    info->bits_stored = sixteen ? 16 : (len > 24 ? bytes[24] : 8);  // IHDR bit depth (1, 2, 4 or 8 here)
  }
  return img;
}

}  // namespace

GrayImage decode_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name, ImageInfo* info) {
  CXR_CHECK(size > 0, "image file ", name, " is empty");
  CXR_CHECK(size < (1ull << 31), "image file ", name, " is too large (", size, " bytes)");
  if (info) *info = ImageInfo{};
  switch (detect_image_format(bytes, size)) {
    case ImageFormat::png: return decode_png_gray8(bytes, size, name, info);
    case ImageFormat::jpeg: return decode_jpeg_gray8(bytes, size, name, info);
    case ImageFormat::dicom: return decode_dicom_gray8(bytes, size, name, info);
    case ImageFormat::unknown: break;
  }
  std::string head;
  for (std::size_t i = 0; i < std::min<std::size_t>(size, 8); ++i) {
    static const char* kHex = "0123456789abcdef";
    head += std::string(i ? " " : "") + kHex[bytes[i] >> 4] + kHex[bytes[i] & 15];
  }
  CXR_FAIL("cannot decode image ", name, ": not a PNG, JPEG or DICOM file (it starts with bytes ", head, ")");
}

GrayImage decode_gray8_file(const std::string& path, ImageInfo* info) {
  const auto bytes = read_file_bytes(path);
  return decode_gray8(bytes.data(), bytes.size(), path, info);
}

namespace {
void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<std::uint8_t>*>(context);
  const auto* p = static_cast<const std::uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}
}  // namespace

std::vector<std::uint8_t> encode_png8(const std::uint8_t* pixels, int width, int height, int channels) {
  CXR_CHECK(width > 0 && height > 0 && channels >= 1 && channels <= 4, "encode_png8: bad image ", width, "x",
            height, "x", channels);
  std::vector<std::uint8_t> out;
  const int ok = stbi_write_png_to_func(append_bytes, &out, width, height, channels, pixels, width * channels);
  CXR_CHECK(ok != 0, "encode_png8: stb_image_write failed for a ", width, "x", height, " image");
  return out;
}

void write_png_gray8(const std::string& path, const GrayImage& image) {
  CXR_CHECK(image.pixels.size() == static_cast<std::size_t>(image.width) * image.height,
            "write_png_gray8: ", path, ": pixel count does not match ", image.width, "x", image.height);
  const auto bytes = encode_png8(image.pixels.data(), image.width, image.height, 1);
  std::ofstream out(path, std::ios::binary);
  CXR_CHECK(out.good(), "cannot create ", path);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  CXR_CHECK(out.good(), "cannot write ", path);
}

}  // namespace cxr::data
