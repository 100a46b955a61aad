// ImageCache: validation, parallel build and memory-mapped access.
#include "data/cache.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "data/image_io.h"
#include "data/resize.h"
#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t size;
  std::uint64_t count;
  std::uint64_t list_hash;
  std::uint64_t entries_offset, names_offset, pixels_offset;
  std::uint64_t file_size;
};

struct Entry {
  std::uint64_t pixel_offset;  // from the start of the file; 0 when status != Ok
  std::uint32_t width, height;  // of the decoded source image
  std::uint32_t status;
  std::uint32_t name_length;
};
static_assert(sizeof(Entry) == 24);

constexpr char kMagic[8] = {'C', 'X', 'R', 'C', 'A', 'C', 'H', 'E'};

std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  return h;
}

// Names in order, and whether each file exists.
std::uint64_t list_hash(const Dataset& ds) {
  std::uint64_t h = 0xCBF29CE484222325ull;
  for (std::int64_t i = 0; i < ds.size(); ++i) {
    const auto& name = ds.record(i).name;
    const char found = ds.image_path(i).empty() ? 0 : 1;
    h = fnv1a(h, name.data(), name.size());
    h = fnv1a(h, &found, 1);
  }
  return h;
}

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// Why the file at `path` cannot serve (dataset, size); "" when it can.
std::string mismatch(const std::string& path, const Dataset& ds, int size, std::uint64_t hash) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return "no cache file yet";
  std::ifstream in(path, std::ios::binary);
  Header h{};
  in.read(reinterpret_cast<char*>(&h), sizeof h);
  if (!in.good() || std::memcmp(h.magic, kMagic, 8) != 0) return "not a cxr cache file";
  if (h.version != kCacheFormatVersion)
    return detail::concat("format version ", h.version, ", expected ", kCacheFormatVersion);
  if (h.size != static_cast<std::uint32_t>(size)) return detail::concat("size ", h.size, ", expected ", size);
  if (h.count != static_cast<std::uint64_t>(ds.size()) || h.list_hash != hash) return "the image list changed";
  if (fs::file_size(path, ec) != h.file_size) return "the file is truncated";
  return "";
}

struct Decoded {
  CacheStatus status = CacheStatus::Ok;
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
  std::string error;
};

Decoded decode_one(const Dataset& ds, std::int64_t i, int size) {
  Decoded d;
  const std::string& path = ds.image_path(i);
  if (path.empty()) {
    d.status = CacheStatus::Missing;
    d.error = "image " + ds.record(i).name + " not found under " + ds.root;
    return d;
  }
  try {
    const GrayImage img = decode_gray8_file(path);
    d.width = img.width;
    d.height = img.height;
    d.pixels.resize(static_cast<std::size_t>(size) * size);
    resize_gray8(img.pixels.data(), img.width, img.height, d.pixels.data(), size, size);
  } catch (const std::exception& e) {
    d.status = CacheStatus::Unreadable;
    d.error = e.what();
  }
  return d;
}

void build(const Dataset& ds, const CacheOptions& opt, std::uint64_t hash, const std::string& path,
           Report& report) {
  fs::create_directories(opt.dir);
  const std::string tmp = detail::concat(path, ".tmp.", ::getpid());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  CXR_CHECK(out.good(), "cannot create the cache file ", tmp);

  const auto n = static_cast<std::uint64_t>(ds.size());
  std::uint64_t names_bytes = 0;
  for (std::int64_t i = 0; i < ds.size(); ++i) names_bytes += ds.record(i).name.size();
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kCacheFormatVersion;
  h.size = static_cast<std::uint32_t>(opt.size);
  h.count = n;
  h.list_hash = hash;
  h.entries_offset = sizeof(Header);
  h.names_offset = h.entries_offset + n * sizeof(Entry);
  h.pixels_offset = align_up(h.names_offset + names_bytes, 4096);
  std::vector<Entry> entries(n);

  // Placeholder header and index; rewritten at the end.
  out.write(reinterpret_cast<const char*>(&h), sizeof h);
  out.write(reinterpret_cast<const char*>(entries.data()), static_cast<std::streamsize>(n * sizeof(Entry)));
  for (std::int64_t i = 0; i < ds.size(); ++i) out << ds.record(i).name;
  out.seekp(static_cast<std::streamoff>(h.pixels_offset));

  // Decode a chunk in parallel, then append it in data set order (the file is deterministic).
  const int threads = std::max(1, opt.threads);
  const std::uint64_t chunk = 32ull * static_cast<std::uint64_t>(threads);
  std::uint64_t offset = h.pixels_offset;
  std::vector<Decoded> done(chunk);
  for (std::uint64_t start = 0; start < n; start += chunk) {
    const std::uint64_t end = std::min(n, start + chunk);
    std::atomic<std::uint64_t> next{start};
    auto work = [&] {
      for (std::uint64_t i = next++; i < end; i = next++)
        done[i - start] = decode_one(ds, static_cast<std::int64_t>(i), opt.size);
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    for (std::uint64_t i = start; i < end; ++i) {
      Decoded& d = done[i - start];
      Entry& e = entries[i];
      e.name_length = static_cast<std::uint32_t>(ds.record(static_cast<std::int64_t>(i)).name.size());
      e.status = static_cast<std::uint32_t>(d.status);
      if (d.status != CacheStatus::Ok) {
        if (opt.strict) {
          out.close();
          fs::remove(tmp);
          CXR_FAIL("building the cache (--strict): ", d.error);
        }
        report.warn("cache: skipping " + d.error);
        continue;
      }
      e.width = static_cast<std::uint32_t>(d.width);
      e.height = static_cast<std::uint32_t>(d.height);
      e.pixel_offset = offset;
      out.write(reinterpret_cast<const char*>(d.pixels.data()), static_cast<std::streamsize>(d.pixels.size()));
      offset += d.pixels.size();
      d = Decoded{};
    }
  }
  h.file_size = std::max<std::uint64_t>(offset, h.pixels_offset);
  out.seekp(0);
  out.write(reinterpret_cast<const char*>(&h), sizeof h);
  out.write(reinterpret_cast<const char*>(entries.data()), static_cast<std::streamsize>(n * sizeof(Entry)));
  out.close();
  CXR_CHECK(!out.fail(), "cannot write the cache file ", tmp, " (disk full?)");
  fs::resize_file(tmp, h.file_size);  // pixels of the last images may end before the aligned start
  fs::rename(tmp, path);
}

}  // namespace

std::string cache_file_path(const std::string& dir, int size) {
  return (fs::path(dir) / detail::concat("cxr_cache_", size, ".bin")).string();
}

ImageCache ImageCache::open_or_build(const Dataset& ds, const CacheOptions& opt, Report& report) {
  CXR_CHECK(opt.size > 0, "cache size must be positive, got ", opt.size);
  CXR_CHECK(!opt.dir.empty(), "no cache folder given");
  const std::uint64_t hash = list_hash(ds);
  const std::string path = cache_file_path(opt.dir, opt.size);
  ImageCache c;
  c.reason_ = mismatch(path, ds, opt.size, hash);
  if (!c.reason_.empty()) {
    build(ds, opt, hash, path, report);
    c.rebuilt_ = true;
  }
  try {
    c.map(path);
  } catch (const Error& e) {
    if (c.rebuilt_) throw;
    c.reason_ = e.what();  // passed the header checks but is damaged inside: build it again
    build(ds, opt, hash, path, report);
    c.rebuilt_ = true;
    c.map(path);
  }
  return c;
}

namespace {
Entry entry_at(const std::uint8_t* entries, std::int64_t i) {
  Entry e;
  std::memcpy(&e, entries + static_cast<std::size_t>(i) * sizeof(Entry), sizeof e);
  return e;
}
}  // namespace

void ImageCache::map(const std::string& path) {
  file_ = MappedFile(path);
  path_ = path;
  Header h{};
  CXR_CHECK(file_.size() >= sizeof h, "cache file ", path, " is truncated");
  std::memcpy(&h, file_.data(), sizeof h);
  CXR_CHECK(h.file_size == file_.size(), "cache file ", path, " is truncated");
  size_ = static_cast<int>(h.size);
  count_ = static_cast<std::int64_t>(h.count);
  entries_ = file_.data() + h.entries_offset;
  CXR_CHECK(h.entries_offset + h.count * sizeof(Entry) <= file_.size(), "cache file ", path, " is corrupt (index)");
  bad_ = 0;
  const std::uint64_t image_bytes = static_cast<std::uint64_t>(size_) * static_cast<std::uint64_t>(size_);
  for (std::int64_t i = 0; i < count_; ++i) {
    const Entry e = entry_at(entries_, i);
    if (e.status != static_cast<std::uint32_t>(CacheStatus::Ok)) {
      ++bad_;
      continue;
    }
    CXR_CHECK(e.pixel_offset >= h.pixels_offset && e.pixel_offset + image_bytes <= file_.size(), "cache file ", path,
              " is corrupt: image ", i, " lies outside the file");
  }
}

CacheStatus ImageCache::status(std::int64_t i) const {
  CXR_CHECK(i >= 0 && i < count_, "cache index ", i, " out of range [0, ", count_, ")");
  return static_cast<CacheStatus>(entry_at(entries_, i).status);
}

const std::uint8_t* ImageCache::pixels(std::int64_t i) const {
  if (status(i) != CacheStatus::Ok) return nullptr;
  return file_.data() + entry_at(entries_, i).pixel_offset;
}

int ImageCache::source_width(std::int64_t i) const { return static_cast<int>(entry_at(entries_, i).width); }
int ImageCache::source_height(std::int64_t i) const { return static_cast<int>(entry_at(entries_, i).height); }

}  // namespace cxr::data
