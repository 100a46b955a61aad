// stb_image / stb_image_write behind a small interface. Both libraries are compiled here as
// static functions (STB_*_STATIC), so no other file of the project, nor another library
// that embeds stb, can clash with these symbols.
#include "data/image_io.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

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
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
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

GrayImage decode_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  CXR_CHECK(size > 0, "image file ", name, " is empty");
  CXR_CHECK(size < (1ull << 31), "image file ", name, " is too large (", size, " bytes)");
  const int len = static_cast<int>(size);
  int w = 0, h = 0, channels = 0;
  GrayImage img;
  if (stbi_is_16_bit_from_memory(bytes, len)) {
    std::unique_ptr<stbi_us, void (*)(void*)> p(stbi_load_16_from_memory(bytes, len, &w, &h, &channels, 1),
                                               stbi_image_free);
    CXR_CHECK(p != nullptr, "cannot decode image ", name, ": ", stbi_failure_reason());
    img.width = w;
    img.height = h;
    img.pixels.resize(static_cast<std::size_t>(w) * h);
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
  return img;
}

GrayImage decode_gray8_file(const std::string& path) {
  const auto bytes = read_file_bytes(path);
  return decode_gray8(bytes.data(), bytes.size(), path);
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
