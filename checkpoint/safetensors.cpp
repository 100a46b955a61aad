// safetensors reading and writing: header validation, dtype conversion, atomic writes.
// The format and the dtype rules are described in safetensors.h.
#include "checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace cxr {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

namespace {

using json = nlohmann::json;

// A dtype as the file names it: its element size and what it becomes in memory.
struct FileDType {
  const char* name;
  std::size_t size;
  bool supported;
  DType loaded;  // the cxr dtype it is read into (when supported)
};

constexpr FileDType kFileDTypes[] = {
    {"F32", 4, true, DType::F32},   {"BF16", 2, true, DType::BF16}, {"F16", 2, true, DType::F16},
    {"U8", 1, true, DType::U8},     {"I32", 4, true, DType::I32},   {"I64", 8, true, DType::I32},
    {"F64", 8, true, DType::F32},   {"BOOL", 1, true, DType::U8},   {"I8", 1, false, DType::U8},
    {"I16", 2, false, DType::U8},   {"U16", 2, false, DType::U8},   {"U32", 4, false, DType::U8},
    {"U64", 8, false, DType::U8},   {"F8_E4M3", 1, false, DType::U8}, {"F8_E5M2", 1, false, DType::U8},
};

const FileDType* find_file_dtype(const std::string& name) {
  for (const auto& d : kFileDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* natural_file_dtype(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::U8: return "U8";
    case DType::I32: return "I32";
  }
  return "?";
}

// A validated header entry.
struct HeaderEntry {
  std::string name;
  const FileDType* dtype = nullptr;
  std::string dtype_name;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

std::uint64_t read_u64_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::uint64_t json_offset(const json& j, const std::string& what, const std::string& tensor, const char* field) {
  CXR_CHECK(j.is_number_unsigned(), what, ": tensor '", tensor, "': ", field,
            " must hold non-negative integers, found ", j.dump());
  return j.get<std::uint64_t>();
}

// Parses and validates the JSON header; `data_size` is the number of bytes after it.
std::vector<HeaderEntry> parse_header(const std::string& header, std::uint64_t data_size, const std::string& what,
                                      SafetensorsMetadata& metadata) {
  // nlohmann keeps the last of two equal keys; detect duplicates while parsing.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.empty() && duplicate.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(header, on_event);
  } catch (const json::exception& e) {
    CXR_FAIL(what, ": the header is not valid JSON (", header.size(), " bytes): ", e.what());
  }
  CXR_CHECK(duplicate.empty(), what, ": the header names '", duplicate, "' twice");
  CXR_CHECK(root.is_object(), what, ": the header must be a JSON object, found ", root.type_name());

  std::vector<HeaderEntry> entries;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      CXR_CHECK(v.is_object(), what, ": __metadata__ must be an object of strings, found ", v.type_name());
      for (auto m = v.begin(); m != v.end(); ++m) {
        CXR_CHECK(m.value().is_string(), what, ": __metadata__ value of '", m.key(), "' must be a string, found ",
                  m.value().type_name());
        metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    // The format allows any key; an empty one names nothing cxr could look up, and
    // write_safetensors refuses it, so a file read here can always be written again.
    CXR_CHECK(!name.empty(), what, ": a tensor has an empty name (\"\"); every tensor needs a name");
    CXR_CHECK(v.is_object(), what, ": tensor '", name, "' must be an object, found ", v.type_name());
    for (const char* key : {"dtype", "shape", "data_offsets"})
      CXR_CHECK(v.contains(key), what, ": tensor '", name, "' has no \"", key, "\"");
    HeaderEntry e;
    e.name = name;
    CXR_CHECK(v["dtype"].is_string(), what, ": tensor '", name, "': dtype must be a string, found ", v["dtype"].dump());
    e.dtype_name = v["dtype"].get<std::string>();
    e.dtype = find_file_dtype(e.dtype_name);
    CXR_CHECK(e.dtype != nullptr, what, ": tensor '", name, "': unknown dtype \"", e.dtype_name, "\"");

    const json& shape = v["shape"];
    CXR_CHECK(shape.is_array(), what, ": tensor '", name, "': shape must be an array, found ", shape.dump());
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const json& d : shape) {
      const std::uint64_t n = json_offset(d, what, name, "shape");
      CXR_CHECK(n <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), what, ": tensor '", name,
                "': dimension ", n, " is too large");
      overflow = overflow || __builtin_mul_overflow(numel, n, &numel);
      e.shape.push_back(static_cast<std::int64_t>(n));
    }
    std::uint64_t nbytes = 0;
    overflow = overflow || __builtin_mul_overflow(numel, static_cast<std::uint64_t>(e.dtype->size), &nbytes);

    const json& off = v["data_offsets"];
    CXR_CHECK(off.is_array() && off.size() == 2, what, ": tensor '", name,
              "': data_offsets must be [begin, end], found ", off.dump());
    e.begin = json_offset(off[0], what, name, "data_offsets");
    e.end = json_offset(off[1], what, name, "data_offsets");
    CXR_CHECK(e.begin <= e.end, what, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
              "] end before they begin");
    CXR_CHECK(e.end <= data_size, what, ": tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
              "] run past the end of the data (", data_size, " bytes)");
    CXR_CHECK(!overflow && nbytes == e.end - e.begin, what, ": tensor '", name, "': shape ", shape_str(e.shape),
              " of ", e.dtype_name, " needs ", overflow ? std::string("more than 2^64") : std::to_string(nbytes),
              " bytes but data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin);
    entries.push_back(std::move(e));
  }

  // The spans must tile [0, data_size) exactly.
  std::stable_sort(entries.begin(), entries.end(), [](const HeaderEntry& a, const HeaderEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  const HeaderEntry* previous = nullptr;
  for (const HeaderEntry& e : entries) {
    if (e.begin < expected)
      CXR_FAIL(what, ": tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end, "] overlap tensor '",
               previous->name, "' [", previous->begin, ", ", previous->end, "]");
    if (e.begin > expected)
      CXR_FAIL(what, ": gap in the data: bytes [", expected, ", ", e.begin, ") belong to no tensor (next is '", e.name,
               "')");
    expected = e.end;
    previous = &e;
  }
  CXR_CHECK(expected == data_size, what, ": ", data_size - expected, " bytes after the last tensor belong to no tensor",
            " (data section is ", data_size, " bytes, tensors end at ", expected, ")");
  for (const HeaderEntry& e : entries)
    CXR_CHECK(e.dtype->supported, what, ": tensor '", e.name, "': dtype ", e.dtype_name,
              " is not supported by cxr (F32, BF16, F16, U8, I32, I64, F64, BOOL are)");
  return entries;
}

// Reads n bytes at data offset `offset` into dst.
using ReadFn = std::function<void(std::uint64_t offset, void* dst, std::size_t n)>;

Tensor load_entry(const HeaderEntry& e, const ReadFn& read, const std::string& what) {
  Tensor t = Tensor::empty(e.shape, e.dtype->loaded, Device::CPU);
  const std::size_t n = static_cast<std::size_t>(e.end - e.begin);
  if (n == 0) return t;
  const std::string& dt = e.dtype_name;
  if (dt == "I64") {
    std::vector<std::int64_t> tmp(n / 8);
    read(e.begin, tmp.data(), n);
    std::int32_t* out = t.data<std::int32_t>();
    for (std::size_t i = 0; i < tmp.size(); ++i) {
      CXR_CHECK(tmp[i] >= std::numeric_limits<std::int32_t>::min() && tmp[i] <= std::numeric_limits<std::int32_t>::max(),
                what, ": tensor '", e.name, "': I64 value ", tmp[i], " at element ", i,
                " does not fit the I32 tensor it is loaded into");
      out[i] = static_cast<std::int32_t>(tmp[i]);
    }
  } else if (dt == "F64") {
    std::vector<double> tmp(n / 8);
    read(e.begin, tmp.data(), n);
    float* out = t.f32();
    for (std::size_t i = 0; i < tmp.size(); ++i) out[i] = static_cast<float>(tmp[i]);
  } else if (dt == "BOOL") {
    read(e.begin, t.raw_data(), n);
    auto* out = t.data<std::uint8_t>();
    for (std::size_t i = 0; i < n; ++i) out[i] = out[i] != 0;
  } else {
    read(e.begin, t.raw_data(), n);
  }
  return t;
}

std::string errno_text(int err) { return std::strerror(err); }

// Header + data of one file as bytes.
std::string build_header(const std::vector<SafetensorsEntry>& entries, const SafetensorsMetadata& metadata,
                         const std::string& what, std::vector<Tensor>& packed, std::vector<std::string>& dtypes) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json m = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    header["__metadata__"] = m;
  }
  std::set<std::string> seen;
  std::uint64_t offset = 0;
  for (const SafetensorsEntry& e : entries) {
    CXR_CHECK(!e.name.empty() && e.name != "__metadata__", what, ": invalid tensor name '", e.name, "'");
    CXR_CHECK(seen.insert(e.name).second, what, ": tensor '", e.name, "' is given twice");
    CXR_CHECK(e.tensor.defined(), what, ": tensor '", e.name, "' is undefined");
    Tensor t = e.tensor.cpu().contiguous();
    const std::string natural = natural_file_dtype(t.dtype());
    std::string dt = e.file_dtype.empty() ? natural : e.file_dtype;
    const bool widen = dt == "I64" && t.dtype() == DType::I32;
    CXR_CHECK(dt == natural || widen, what, ": tensor '", e.name, "' is ", dtype_name(t.dtype()),
              " and cannot be written as ", dt, " (only I32 -> I64 widening is offered)");
    const std::uint64_t nbytes = t.nbytes() * (widen ? 2 : 1);
    header[e.name] = {{"dtype", dt}, {"shape", t.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    packed.push_back(t);
    dtypes.push_back(dt);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  return text;
}

}  // namespace

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  for (const auto& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  const SafetensorsEntry* e = find(name);
  CXR_CHECK(e != nullptr, "safetensors: no tensor named '", name, "' (", entries.size(), " tensors)");
  return e->tensor;
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& what) {
  CXR_CHECK(bytes.size() >= 8, what, ": truncated: ", bytes.size(), " bytes, expected at least 8 for the header length");
  const std::uint64_t n = read_u64_le(reinterpret_cast<const unsigned char*>(bytes.data()));
  CXR_CHECK(n <= kSafetensorsMaxHeader, what, ": header length ", n, " exceeds the ", kSafetensorsMaxHeader,
            "-byte limit");
  CXR_CHECK(n <= bytes.size() - 8, what, ": header length ", n, " is larger than the file (", bytes.size(),
            " bytes, ", bytes.size() - 8, " after the length)");
  SafetensorsFile out;
  const std::uint64_t data_start = 8 + n;
  auto entries = parse_header(bytes.substr(8, n), bytes.size() - data_start, what, out.metadata);
  ReadFn read = [&](std::uint64_t offset, void* dst, std::size_t count) {
    std::memcpy(dst, bytes.data() + data_start + offset, count);
  };
  for (const HeaderEntry& e : entries) out.entries.push_back({e.name, load_entry(e, read, what), e.dtype_name});
  return out;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CXR_CHECK(fd >= 0, "cannot open safetensors file ", path, ": ", errno_text(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  CXR_CHECK(::fstat(fd, &st) == 0, "cannot stat ", path, ": ", errno_text(errno));
  CXR_CHECK(S_ISREG(st.st_mode), path, ": not a regular file");
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);

  auto pread_all = [&](std::uint64_t offset, void* dst, std::size_t count) {
    auto* p = static_cast<char*>(dst);
    while (count > 0) {
      const ssize_t got = ::pread(fd, p, count, static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      CXR_CHECK(got >= 0, path, ": read error at byte ", offset, ": ", errno_text(errno));
      CXR_CHECK(got > 0, path, ": unexpected end of file at byte ", offset, " (the file shrank while reading?)");
      p += got;
      offset += static_cast<std::uint64_t>(got);
      count -= static_cast<std::size_t>(got);
    }
  };

  CXR_CHECK(size >= 8, path, ": truncated: ", size, " bytes, expected at least 8 for the header length");
  unsigned char len[8];
  pread_all(0, len, 8);
  const std::uint64_t n = read_u64_le(len);
  CXR_CHECK(n <= kSafetensorsMaxHeader, path, ": header length ", n, " exceeds the ", kSafetensorsMaxHeader,
            "-byte limit");
  CXR_CHECK(n <= size - 8, path, ": header length ", n, " is larger than the file (", size, " bytes, ", size - 8,
            " after the length)");
  std::string header(static_cast<std::size_t>(n), '\0');
  pread_all(8, header.data(), header.size());
  SafetensorsFile out;
  const std::uint64_t data_start = 8 + n;
  auto entries = parse_header(header, size - data_start, path, out.metadata);
  ReadFn read = [&](std::uint64_t offset, void* dst, std::size_t count) { pread_all(data_start + offset, dst, count); };
  for (const HeaderEntry& e : entries) out.entries.push_back({e.name, load_entry(e, read, path), e.dtype_name});
  return out;
}

std::string serialize_safetensors(const std::vector<SafetensorsEntry>& entries, const SafetensorsMetadata& metadata,
                                  const std::string& what) {
  std::vector<Tensor> packed;
  std::vector<std::string> dtypes;
  const std::string header = build_header(entries, metadata, what, packed, dtypes);
  std::string out;
  std::uint64_t total = 8 + header.size();
  for (std::size_t i = 0; i < packed.size(); ++i) total += packed[i].nbytes() * (dtypes[i] == "I64" ? 2 : 1);
  out.reserve(static_cast<std::size_t>(total));
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += header;
  for (std::size_t i = 0; i < packed.size(); ++i) {
    const Tensor& t = packed[i];
    if (t.nbytes() == 0) continue;
    if (dtypes[i] == "I64") {
      const std::int32_t* src = t.data<std::int32_t>();
      for (std::int64_t k = 0; k < t.numel(); ++k) {
        const std::int64_t v = src[k];
        out.append(reinterpret_cast<const char*>(&v), 8);
      }
    } else {
      out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
    }
  }
  return out;
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  CXR_CHECK(fd >= 0, "cannot write ", path, ": creating the temporary file ", tmp, " failed: ", errno_text(errno));
  auto fail = [&](const char* step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    CXR_FAIL("cannot write ", path, ": ", step, " failed: ", errno_text(err), " (nothing was replaced)");
  };
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t put = ::write(fd, p, left);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) {
      if (put == 0) errno = EIO;
      fail("writing the data");
    }
    p += put;
    left -= static_cast<std::size_t>(put);
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CXR_FAIL("cannot write ", path, ": closing ", tmp, " failed: ", errno_text(err), " (nothing was replaced)");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CXR_FAIL("cannot write ", path, ": renaming ", tmp, " over it failed: ", errno_text(err));
  }
  // Make the rename itself durable (best effort: some file systems refuse directory fsync).
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_safetensors_entries(const std::string& path, const std::vector<SafetensorsEntry>& entries,
                               const SafetensorsMetadata& metadata) {
  write_file_atomic(path, serialize_safetensors(entries, metadata, path));
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const SafetensorsMetadata& metadata) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) entries.push_back({name, t, ""});
  write_safetensors_entries(path, entries, metadata);
}

namespace {

float bf16_to_f32(std::uint16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const int exp = (h >> 10) & 0x1f;
  const std::uint32_t mant = h & 0x3ff;
  float magnitude;
  if (exp == 0) magnitude = std::ldexp(static_cast<float>(mant), -24);  // zero and subnormals
  else if (exp == 31) magnitude = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else magnitude = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(magnitude) | sign);
}

}  // namespace

Tensor to_f32_cpu(const Tensor& src) {
  CXR_CHECK(src.defined(), "to_f32_cpu: undefined tensor");
  const Tensor t = src.cpu().contiguous();
  Tensor out = Tensor::empty(t.shape(), DType::F32, Device::CPU);
  float* o = out.f32();
  const std::int64_t n = t.numel();
  switch (t.dtype()) {
    case DType::F32: std::copy(t.f32(), t.f32() + n, o); break;
    case DType::BF16: {
      const auto* p = static_cast<const std::uint16_t*>(t.raw_data());
      for (std::int64_t i = 0; i < n; ++i) o[i] = bf16_to_f32(p[i]);
      break;
    }
    case DType::F16: {
      const auto* p = static_cast<const std::uint16_t*>(t.raw_data());
      for (std::int64_t i = 0; i < n; ++i) o[i] = f16_to_f32(p[i]);
      break;
    }
    case DType::U8: {
      const auto* p = t.data<std::uint8_t>();
      for (std::int64_t i = 0; i < n; ++i) o[i] = p[i];
      break;
    }
    case DType::I32: {
      const auto* p = t.data<std::int32_t>();
      for (std::int64_t i = 0; i < n; ++i) o[i] = static_cast<float>(p[i]);
      break;
    }
  }
  return out;
}

}  // namespace cxr
