// safetensors: the checkpoint file format of Hugging Face's `safetensors`, read and written
// here without that library.
//
//   bytes 0..7     N, the header length, unsigned 64-bit little-endian
//   bytes 8..8+N   JSON: {"<name>": {"dtype": "F32", "shape": [64, 3, 7, 7],
//                                     "data_offsets": [begin, end]}, ...,
//                         "__metadata__": {"<key>": "<string value>", ...}}
//                  (may be padded with trailing spaces; our writer pads to a multiple of 8)
//   bytes 8+N..    the raw little-endian tensor data; offsets are relative to this point.
//                  Every byte belongs to exactly one tensor: no gaps, no overlaps.
//
// dtypes on reading (the file's dtype is kept in SafetensorsEntry::file_dtype):
//   F32, BF16, F16, U8, I32  -> a CPU tensor of the same dtype, bytes as stored
//   I64                      -> an I32 tensor (values range-checked; torchvision's
//                               num_batches_tracked is an I64 scalar: shape [])
//   F64                      -> F32 (rounded)            BOOL -> U8 (0/1)
//   I8, I16, U16, U32, U64, F8_E4M3, F8_E5M2 -> cxr::Error "not supported"
// On writing, a tensor's own dtype is written; the one widening offered is file_dtype
// "I64" for an I32 tensor (write_safetensors_entries), so that a torchvision file
// round-trips as I64. BF16/F16 tensors are written as raw bytes.
//
// Reading validates everything before allocating tensor memory: the header length against
// the file size and a 100 MB cap, the JSON, each entry's keys, dtype, shape (non-negative,
// product without overflow), that shape x dtype size equals the offset span, that the spans
// tile the data section exactly, and that no name appears twice or is empty. Every problem is a
// cxr::Error naming the file, the tensor (or offset) and what was expected and found.
//
// Writing is atomic: the bytes go to "<path>.tmp-<pid>", are fsync'ed, then renamed over
// <path>; on any failure the temporary file is removed and the error names the path and
// strerror(errno). A good file is never replaced by a partial one.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace cxr {

using SafetensorsMetadata = std::map<std::string, std::string>;

struct SafetensorsEntry {
  std::string name;
  Tensor tensor;           // CPU tensor (reading); any device/contiguity (writing)
  std::string file_dtype;  // as in the file: "F32", "I64", ... ; empty when writing = natural
};

struct SafetensorsFile {
  std::vector<SafetensorsEntry> entries;  // in the order of their data offsets
  SafetensorsMetadata metadata;           // "__metadata__"; empty if absent

  const SafetensorsEntry* find(const std::string& name) const;  // nullptr if absent
  const Tensor& at(const std::string& name) const;              // throws naming the tensor
};

// The largest header accepted on reading (the reference implementation's limit too).
inline constexpr std::uint64_t kSafetensorsMaxHeader = 100ull << 20;

SafetensorsFile read_safetensors(const std::string& path);
// Parses an in-memory image of a file; `what` names it in error messages.
SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& what);

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const SafetensorsMetadata& metadata = {});
// The same with per-entry file dtypes (e.g. "I64" for an I32 num_batches_tracked).
void write_safetensors_entries(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                               const SafetensorsMetadata& metadata = {});
// The bytes write_safetensors would write (for tests and in-memory use).
std::string serialize_safetensors(const std::vector<SafetensorsEntry>& entries,
                                  const SafetensorsMetadata& metadata, const std::string& what);

// Writes `bytes` to path atomically (temp file in the same folder, fsync, rename).
void write_file_atomic(const std::string& path, const std::string& bytes);

// Conversion of a CPU BF16/F16/I32/U8/F32 tensor to a new contiguous CPU F32 tensor.
Tensor to_f32_cpu(const Tensor& t);

}  // namespace cxr
