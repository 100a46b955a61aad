// ImageCache: every image of a data set decoded and resized once, packed into one file that
// later epochs and later runs memory-map instead of decoding PNGs again.
//
// File DIR/cxr_cache_<S>.bin (S = the cache resolution), little-endian:
//   header   magic "CXRCACHE", format version, S, image count, hash of the image list,
//            offsets of the index, the names and the pixels, total file size
//   index    per image: pixel offset, width and height of the decoded source image (to
//            scale its boxes), status (ok / missing / unreadable), name length
//   names    the image names, concatenated (the index is checkable by eye with strings(1))
//   pixels   S*S uint8 per readable image, page-aligned start, in data set order
//
// open_or_build() reuses the file when its version, S and image list (names, in order, and
// whether each file exists) match; otherwise it rebuilds it (in parallel) into a temporary
// file and renames it into place, so an interrupted build never leaves a corrupt cache.
#pragma once

#include <cstdint>
#include <string>

#include "data/dataset.h"
#include "data/mapped_file.h"
#include "data/report.h"

namespace cxr::data {

inline constexpr std::uint32_t kCacheFormatVersion = 1;

enum class CacheStatus : std::uint32_t { Ok = 0, Missing = 1, Unreadable = 2 };

struct CacheOptions {
  std::string dir;
  int size = 224;     // cache resolution (square)
  int threads = 2;    // decode threads while building
  bool strict = false;  // an unreadable or missing image is an error while building
};

class ImageCache {
 public:
  static ImageCache open_or_build(const Dataset& dataset, const CacheOptions& options,
                                  Report& report = default_report());

  const std::string& path() const { return path_; }
  int size() const { return size_; }
  std::int64_t count() const { return count_; }
  bool rebuilt() const { return rebuilt_; }                  // this call built the file
  const std::string& rebuild_reason() const { return reason_; }  // why it did
  std::int64_t bad_images() const { return bad_; }

  CacheStatus status(std::int64_t index) const;
  // (size x size) pixels of image `index`, or nullptr when its status is not Ok.
  const std::uint8_t* pixels(std::int64_t index) const;
  // Size of the image as decoded from its file, before resizing (boxes are in these pixels).
  int source_width(std::int64_t index) const;
  int source_height(std::int64_t index) const;

 private:
  void map(const std::string& path);
  MappedFile file_;
  std::string path_, reason_;
  int size_ = 0;
  std::int64_t count_ = 0, bad_ = 0;
  bool rebuilt_ = false;
  const std::uint8_t* entries_ = nullptr;
};

// The file name the cache of resolution `size` has in `dir`.
std::string cache_file_path(const std::string& dir, int size);

}  // namespace cxr::data
