// Data test helpers: paths, temp folders, a shared synthetic set, a minimal PNG encoder.
#include "tests/data/data_test_util.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/synth.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::test {

std::optional<std::string> nih_dir() {
  std::string base;
  if (const char* env = std::getenv("CXR_SHARED_DATA"); env && *env) base = env;
#ifdef CXR_SHARED_DATA_DIR
  else base = CXR_SHARED_DATA_DIR;
#endif
  if (base.empty()) return std::nullopt;
  const fs::path nih = fs::path(base) / "nih";
  std::error_code ec;
  if (!fs::is_regular_file(nih / "Data_Entry_2017_v2020.csv", ec)) return std::nullopt;
  return nih.string();
}

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = (fs::temp_directory_path() /
           ("cxr_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + tag))
              .string();
  fs::remove_all(path_);
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

const std::string& small_synth_dir() {
  static TempDir dir("synth");
  static const bool written = [] {
    data::SynthOptions o;
    o.out_dir = dir.path();
    o.images = 48;
    o.size = 64;
    o.seed = 7;
    o.threads = 2;
    data::write_synthetic_dataset(o);
    return true;
  }();
  (void)written;
  return dir.path();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  CXR_CHECK(out.good(), "cannot write ", path);
}

void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  CXR_CHECK(out.good(), "cannot write ", path);
}

namespace {

std::uint32_t crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) {
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
}

void chunk(std::vector<std::uint8_t>& png, const char* type, const std::vector<std::uint8_t>& data) {
  put32(png, static_cast<std::uint32_t>(data.size()));
  std::vector<std::uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  png.insert(png.end(), body.begin(), body.end());
  put32(png, crc32(body.data(), body.size()));
}

}  // namespace

std::vector<std::uint8_t> encode_png(const std::vector<std::uint16_t>& samples, int w, int h, int channels,
                                     int bits) {
  static const std::uint8_t color_type[5] = {0, 0, 4, 2, 6};  // gray, gray+alpha, RGB, RGBA
  std::vector<std::uint8_t> raw;  // filter byte 0 + samples, per row
  const int bytes = bits / 8;
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);
    for (int i = 0; i < w * channels; ++i) {
      const std::uint16_t v = samples[static_cast<std::size_t>(y) * w * channels + i];
      if (bytes == 2) raw.push_back(static_cast<std::uint8_t>(v >> 8));
      raw.push_back(static_cast<std::uint8_t>(v & 0xFF));
    }
  }
  std::vector<std::uint8_t> z = {0x78, 0x01};  // zlib header, stored blocks
  for (std::size_t pos = 0; pos < raw.size() || pos == 0;) {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - pos);
    const bool last = pos + n >= raw.size();
    z.push_back(last ? 1 : 0);
    z.push_back(static_cast<std::uint8_t>(n & 0xFF));
    z.push_back(static_cast<std::uint8_t>(n >> 8));
    z.push_back(static_cast<std::uint8_t>(~n & 0xFF));
    z.push_back(static_cast<std::uint8_t>((~n >> 8) & 0xFF));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos), raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    if (last) break;
  }
  std::uint32_t a = 1, b = 0;  // adler32
  for (std::uint8_t c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put32(z, (b << 16) | a);

  std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<std::uint8_t> ihdr;
  put32(ihdr, static_cast<std::uint32_t>(w));
  put32(ihdr, static_cast<std::uint32_t>(h));
  ihdr.push_back(static_cast<std::uint8_t>(bits));
  ihdr.push_back(color_type[channels]);
  ihdr.push_back(0);
  ihdr.push_back(0);
  ihdr.push_back(0);
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", {});
  return png;
}

}  // namespace cxr::test
