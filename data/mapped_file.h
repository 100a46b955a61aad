// A read-only memory map of a whole file (POSIX mmap), RAII. Pages are read on demand by
// the kernel and shared between processes, so a cache file larger than RAM still works.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cxr::data {

class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);  // throws cxr::Error when it cannot
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool is_open() const { return data_ != nullptr; }

 private:
  void close();
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace cxr::data
