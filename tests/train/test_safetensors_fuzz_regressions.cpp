// Regressions of the safetensors reader found with fuzz/fuzz_safetensors (scripts/fuzz): the
// reduced input of each failure and the clean behaviour the reader now has.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "tensor/error.h"
#include "checkpoint/safetensors.h"

using namespace cxr;

namespace {

std::string with_header(const std::string& header, const std::string& data) {
  std::string out;
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

}  // namespace

TEST_SUITE("train") {

// fuzz_safetensors' round-trip check: a tensor named "" was read, but write_safetensors
// refuses that name, so the file could not be written back. The reader refuses it now.
TEST_CASE("fuzz regression: safetensors: a tensor with an empty name is an error naming the file") {
  const std::string bytes =
      with_header(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string("\0\0\x80\x3f", 4));
  CHECK_THROWS_WITH_AS(parse_safetensors(bytes, "empty_name.safetensors"),
                       doctest::Contains("empty_name.safetensors: a tensor has an empty name"), Error);
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("cxr_test_st_fuzz_" + std::to_string(::getpid()) + ".safetensors"))
                               .string();
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
  }
  const std::string expected = path + ": a tensor has an empty name";
  CHECK_THROWS_WITH_AS(read_safetensors(path), doctest::Contains(expected.c_str()), Error);
  std::filesystem::remove(path);
  // A name is all it takes to make the file good.
  const std::string named =
      with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", std::string("\0\0\x80\x3f", 4));
  CHECK(parse_safetensors(named, "named.safetensors").at("w").f32()[0] == 1.f);
}

}  // TEST_SUITE
