// Helpers of the data tests: where the real NIH files are, temporary folders, a small
// synthetic data set built once, and a PNG writer for sample formats stb_image_write lacks
// (16-bit).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cxr::test {

// ../shared/data/nih (from $CXR_SHARED_DATA or the CXR_SHARED_DATA_DIR definition), or
// nullopt when that folder is absent (the caller then skips with a MESSAGE).
std::optional<std::string> nih_dir();

// A fresh empty folder under the system temp folder, removed with the object.
class TempDir {
 public:
  explicit TempDir(const std::string& tag);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A synthetic data set (48 images of 64 x 64, seed 7), written once per test run.
const std::string& small_synth_dir();

void write_text(const std::string& path, const std::string& text);
void write_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes);

// A PNG with `bits` 8 or 16 and 1..4 channels, samples big-endian for 16-bit as PNG wants
// (pass them as host values; the writer swaps). Stored (uncompressed) deflate blocks.
std::vector<std::uint8_t> encode_png(const std::vector<std::uint16_t>& samples, int width, int height,
                                     int channels, int bits);

}  // namespace cxr::test
