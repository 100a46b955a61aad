// Fuzzes the safetensors reader (checkpoint/safetensors.h): parse_safetensors on the bytes in
// memory, and read_safetensors on the same bytes as a file (a memfd, no disk).
// Feeds: arbitrary bytes as a .safetensors file (seeds: small files written by the
// project's own writer, fuzz/fuzz_seed_safetensors.cpp, with every supported dtype, an
// I64 num_batches_tracked, a scalar, an empty tensor and __metadata__).
// Checks: no crash, leak, UB or huge allocation; a bad file is a cxr::Error; both readers
// agree (both fail, or give the same names, dtypes, shapes, bytes and metadata); entries come
// in data-offset order; a file that parsed is written again by serialize_safetensors and
// reads back identical (the writer accepts whatever the reader returns).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_check.h"
#include "tensor/error.h"
#include "checkpoint/safetensors.h"

using namespace cxr;

namespace {

bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

bool same_file(const SafetensorsFile& a, const SafetensorsFile& b) {
  if (a.entries.size() != b.entries.size() || a.metadata != b.metadata) return false;
  for (std::size_t i = 0; i < a.entries.size(); ++i)
    if (a.entries[i].name != b.entries[i].name || !same_tensor(a.entries[i].tensor, b.entries[i].tensor))
      return false;
  return true;
}

// The bytes as a file: a memfd reached through /proc/self/fd (read_safetensors takes a path).
struct MemFile {
  int fd = -1;
  explicit MemFile(const std::string& bytes) {
    fd = static_cast<int>(::memfd_create("fuzz.safetensors", MFD_CLOEXEC));
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      FUZZ_CHECK(n > 0, "memfd write failed");
      done += static_cast<std::size_t>(n);
    }
  }
  ~MemFile() { ::close(fd); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  SafetensorsFile mem, file;
  bool mem_ok = true, file_ok = true;
  try {
    mem = parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const cxr::Error&) {
    mem_ok = false;
  }
  {
    const MemFile f(bytes);
    try {
      file = read_safetensors(f.path());
    } catch (const cxr::Error&) {
      file_ok = false;
    }
  }
  FUZZ_CHECK(mem_ok == file_ok, "parse_safetensors %s but read_safetensors %s", mem_ok ? "accepted" : "rejected",
             file_ok ? "accepted" : "rejected");
  if (!mem_ok) return 0;
  FUZZ_CHECK(same_file(mem, file), "the in-memory and the file reader disagree");

  for (const auto& e : mem.entries) {
    FUZZ_CHECK(e.tensor.defined() && e.tensor.device() == Device::CPU, "tensor '%s' not a CPU tensor", e.name.c_str());
    FUZZ_CHECK(mem.find(e.name) == &e, "find('%s') is not the entry", e.name.c_str());
  }
  // Write it again and read it back: nothing the reader returns may trip the writer.
  std::vector<SafetensorsEntry> out;
  for (const auto& e : mem.entries) out.push_back({e.name, e.tensor, e.file_dtype == "I64" ? "I64" : ""});
  std::string again;
  try {
    again = serialize_safetensors(out, mem.metadata, "fuzz.safetensors (rewritten)");
  } catch (const cxr::Error& e) {
    FUZZ_CHECK(false, "the writer refused what the reader returned: %s", e.what());
  }
  SafetensorsFile back;
  try {
    back = parse_safetensors(again, "fuzz.safetensors (rewritten)");
  } catch (const cxr::Error& e) {
    FUZZ_CHECK(false, "a rewritten file does not read back: %s", e.what());
  }
  FUZZ_CHECK(same_file(mem, back), "a rewritten file reads back different");
  return 0;
}
