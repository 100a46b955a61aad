// safetensors: round trips, a file written from PyTorch (tests/gen/safetensors_torch.py),
// every prefix of a file and a catalogue of malformed headers (each a cxr::Error naming the
// file and the problem), and the atomic write's failure paths.
//
// Unwritable destinations: tests run as root in CI, where chmod does not stop writes, so
// the "read-only folder" case uses a folder that does not exist (and, when not root, a
// chmod 0555 folder too). A full disk is simulated with RLIMIT_FSIZE (write() fails with
// EFBIG), which needs neither root nor a mount.
#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "tests/golden.h"
#include "checkpoint/safetensors.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

fs::path scratch_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("cxr_test_safetensors_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// A file image from a header text and a data section of `data_bytes` zero bytes.
std::string make_file(const std::string& header, std::size_t data_bytes) {
  std::string out(8, '\0');
  std::uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

bool no_temp_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return false;
  return true;
}

}  // namespace

TEST_SUITE("train") {

TEST_CASE("safetensors: round trip of f32, i32, u8, bf16 tensors with metadata, order kept") {
  std::mt19937_64 rng(3);
  Tensor a = Tensor::randn({4, 3, 2, 2}, rng);
  Tensor b = Tensor::empty({5}, DType::I32);
  for (int i = 0; i < 5; ++i) b.data<std::int32_t>()[i] = i * 1000 - 2;
  Tensor c = Tensor::empty({2, 3}, DType::U8);
  for (int i = 0; i < 6; ++i) c.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(250 + i);
  Tensor d = Tensor::empty({3}, DType::BF16);
  const std::uint16_t bf[3] = {0x3f80, 0xc000, 0x3e80};  // 1, -2, 0.25
  std::memcpy(d.raw_data(), bf, 6);
  Tensor empty = Tensor::empty({0, 4});
  Tensor scalar = Tensor::full({}, 7.5f);
  Tensor strided = a.permute({1, 0, 2, 3});  // not contiguous: written packed

  const fs::path dir = scratch_dir("roundtrip");
  const std::string path = (dir / "x.safetensors").string();
  write_safetensors(path,
                    {{"z.last", a}, {"b", b}, {"c", c}, {"d", d}, {"empty", empty}, {"scalar", scalar}, {"p", strided}},
                    {{"architecture", "resnet18"}, {"note", "ünïcödé \"quoted\""}});
  CHECK(no_temp_files(dir));
  const std::string bytes = read_bytes(path);
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK((8 + n) % 8 == 0);  // data 8-byte aligned

  SafetensorsFile f = read_safetensors(path);
  REQUIRE(f.entries.size() == 7);
  const char* order[] = {"z.last", "b", "c", "d", "empty", "scalar", "p"};
  for (int i = 0; i < 7; ++i) CHECK(f.entries[static_cast<std::size_t>(i)].name == order[i]);
  CHECK(f.at("z.last").to_vector() == a.to_vector());
  CHECK(f.at("b").dtype() == DType::I32);
  CHECK(std::memcmp(f.at("b").raw_data(), b.raw_data(), 20) == 0);
  CHECK(std::memcmp(f.at("c").raw_data(), c.raw_data(), 6) == 0);
  CHECK(f.at("d").dtype() == DType::BF16);
  CHECK(to_f32_cpu(f.at("d")).to_vector() == std::vector<float>{1.f, -2.f, 0.25f});
  CHECK(f.at("empty").shape() == Shape{0, 4});
  CHECK(f.at("scalar").shape() == Shape{});
  CHECK(f.at("scalar").item() == 7.5f);
  CHECK(f.at("p").shape() == Shape{3, 4, 2, 2});
  CHECK(f.at("p").to_vector() == strided.contiguous().to_vector());
  CHECK(f.metadata.at("architecture") == "resnet18");
  CHECK(f.metadata.at("note") == "ünïcödé \"quoted\"");
  CHECK(f.find("nope") == nullptr);
  CHECK_THROWS_WITH_AS(f.at("nope"), doctest::Contains("'nope'"), cxr::Error);

  // Overwriting an existing file replaces it whole.
  write_safetensors(path, {{"only", Tensor::full({2}, 1.f)}});
  CHECK(read_safetensors(path).entries.size() == 1);
  fs::remove_all(dir);
}

TEST_CASE("safetensors: I32 written as I64 round-trips; writing rejects duplicates and bad dtypes") {
  Tensor nbt = Tensor::empty({}, DType::I32);
  nbt.data<std::int32_t>()[0] = 123456;
  const std::string bytes = serialize_safetensors({{"bn.num_batches_tracked", nbt, "I64"}}, {}, "mem");
  CHECK(bytes.find("\"I64\"") != std::string::npos);
  SafetensorsFile f = parse_safetensors(bytes, "mem");
  CHECK(f.entries[0].file_dtype == "I64");
  CHECK(f.entries[0].tensor.data<std::int32_t>()[0] == 123456);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"a", Tensor::zeros({1}), ""}, {"a", Tensor::zeros({1}), ""}}, {}, "m"),
                       doctest::Contains("'a' is given twice"), cxr::Error);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"a", Tensor::zeros({1}), "I64"}}, {}, "m"),
                       doctest::Contains("cannot be written as I64"), cxr::Error);
  CHECK_THROWS_WITH_AS(serialize_safetensors({{"__metadata__", Tensor::zeros({1}), ""}}, {}, "m"),
                       doctest::Contains("invalid tensor name"), cxr::Error);
}

TEST_CASE("safetensors: a file written from a PyTorch state_dict loads with its names, shapes and values") {
  const std::string path = cxr::test::golden_path("torch_small.safetensors");
  SafetensorsFile f = read_safetensors(path);
  struct Expect {
    const char* name;
    Shape shape;
    const char* dtype;
  };
  const Expect expect[] = {
      {"half_scale", {3}, "F16"},
      {"bf16_scale", {2, 2}, "BF16"},
      {"conv1.weight", {4, 3, 3, 3}, "F32"},
      {"bn1.weight", {4}, "F32"},
      {"bn1.bias", {4}, "F32"},
      {"bn1.running_mean", {4}, "F32"},
      {"bn1.running_var", {4}, "F32"},
      {"bn1.num_batches_tracked", {}, "I64"},
      {"layer1.0.weight", {2, 4, 1, 1}, "F32"},
      {"layer1.0.bias", {2}, "F32"},
      {"layer1.1.weight", {2}, "F32"},
      {"layer1.1.bias", {2}, "F32"},
      {"layer1.1.running_mean", {2}, "F32"},
      {"layer1.1.running_var", {2}, "F32"},
      {"layer1.1.num_batches_tracked", {}, "I64"},
      {"fc.weight", {5, 2}, "F32"},
      {"fc.bias", {5}, "F32"},
  };
  REQUIRE(f.entries.size() == std::size(expect));
  CHECK(f.metadata.at("format") == "pt");
  for (std::size_t k = 0; k < f.entries.size(); ++k) {
    const SafetensorsEntry& e = f.entries[k];
    CAPTURE(e.name);
    CHECK(e.name == expect[k].name);
    CHECK(e.tensor.shape() == expect[k].shape);
    CHECK(e.file_dtype == expect[k].dtype);
    if (e.file_dtype == "I64") {
      CHECK(e.tensor.dtype() == DType::I32);
      CHECK(e.tensor.data<std::int32_t>()[0] == static_cast<std::int32_t>(7 + k));
      continue;
    }
    const std::vector<float> v = to_f32_cpu(e.tensor).to_vector();
    for (std::size_t i = 0; i < v.size(); ++i)
      CHECK(v[i] == static_cast<float>(static_cast<double>(static_cast<long>((i * 7 + k * 3) % 23) - 11) / 8.0));
  }
}

TEST_CASE("safetensors: every truncation of a valid file is a cxr::Error naming the file") {
  const std::string path = cxr::test::golden_path("torch_small.safetensors");
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 100);
  CHECK_NOTHROW(parse_safetensors(bytes, "torch_small"));
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    CAPTURE(len);
    CHECK_THROWS_WITH_AS(parse_safetensors(bytes.substr(0, len), "cut.safetensors"),
                         doctest::Contains("cut.safetensors"), cxr::Error);
  }
  // The same through the file reader, on a few lengths.
  const fs::path dir = scratch_dir("truncated");
  for (std::size_t len : {std::size_t{0}, std::size_t{5}, std::size_t{8}, std::size_t{40}, bytes.size() - 1}) {
    const fs::path p = dir / ("cut" + std::to_string(len) + ".safetensors");
    std::ofstream(p, std::ios::binary) << bytes.substr(0, len);
    const std::string name = p.string();
    CHECK_THROWS_WITH_AS(read_safetensors(name), doctest::Contains(name.c_str()), cxr::Error);
  }
  fs::remove_all(dir);
}

TEST_CASE("safetensors: malformed headers name the problem") {
  auto bad = [](const std::string& header, std::size_t data, const char* problem) {
    CAPTURE(header);
    CHECK_THROWS_WITH_AS(parse_safetensors(make_file(header, data), "bad.st"), doctest::Contains(problem), cxr::Error);
    CHECK_THROWS_WITH_AS(parse_safetensors(make_file(header, data), "bad.st"), doctest::Contains("bad.st"), cxr::Error);
  };
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  CHECK(parse_safetensors(make_file(ok, 8), "ok").entries.size() == 1);
  CHECK(parse_safetensors(make_file(ok + "    ", 8), "ok").entries.size() == 1);  // space padding
  bad(ok, 12, "after the last tensor");
  bad(ok.substr(0, ok.size() - 1), 8, "not valid JSON");
  bad("[1, 2]", 0, "must be a JSON object");
  bad(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "has no \"dtype\"");
  bad(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, "has no \"shape\"");
  bad(R"({"a":{"dtype":"F32","shape":[2]}})", 8, "has no \"data_offsets\"");
  bad(R"({"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8, "unknown dtype \"F33\"");
  bad(R"({"a":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}})", 8, "not supported");
  bad(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, "needs 12 bytes");
  bad(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, "non-negative integers");
  bad(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8, "non-negative integers");
  bad(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8, "more than 2^64");
  bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", 8, "run past the end");
  bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, "end before they begin");
  bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, "must be [begin, end]");
  bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", 8, "run past the end");
  bad(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
      12, "overlap tensor 'a'");
  bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
      12, "gap in the data");
  bad(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      8, "names 'a' twice");
  bad(R"({"__metadata__":{"k":3}})", 0, "must be a string");
  bad(R"({"a":[1,2]})", 0, "must be an object");
  bad(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 0, "run past the end");

  // Header length fields that are lies: larger than the file, and absurdly large.
  std::string f = make_file(ok, 8);
  std::uint64_t n = 1000;
  std::memcpy(f.data(), &n, 8);
  CHECK_THROWS_WITH_AS(parse_safetensors(f, "len.st"), doctest::Contains("larger than the file"), cxr::Error);
  n = ~0ull;
  std::memcpy(f.data(), &n, 8);
  CHECK_THROWS_WITH_AS(parse_safetensors(f, "len.st"), doctest::Contains("exceeds"), cxr::Error);

  // An I64 value that does not fit I32.
  std::string big = make_file(R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8);
  const std::int64_t huge = 1ll << 40;
  std::memcpy(big.data() + big.size() - 8, &huge, 8);
  CHECK_THROWS_WITH_AS(parse_safetensors(big, "i64.st"), doctest::Contains("does not fit"), cxr::Error);
}

TEST_CASE("safetensors: random byte corruption never crashes, only throws cxr::Error") {
  const std::string bytes = read_bytes(cxr::test::golden_path("torch_small.safetensors"));
  std::uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  std::mt19937_64 rng(11);
  int errors = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string b = bytes;
    const std::size_t at = rng() % (8 + n);  // the length field and the header
    b[at] = static_cast<char>(rng() & 0xff);
    try {
      parse_safetensors(b, "fuzz");
    } catch (const cxr::Error&) {
      ++errors;
    }
  }
  CHECK(errors > 100);
}

TEST_CASE("safetensors: missing file and directories are errors naming the path") {
  CHECK_THROWS_WITH_AS(read_safetensors("/nonexistent/x.safetensors"), doctest::Contains("/nonexistent/x.safetensors"),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(read_safetensors("/tmp"), doctest::Contains("not a regular file"), cxr::Error);
}

TEST_CASE("safetensors: writing into an unwritable folder raises naming the path and errno, leaves nothing") {
  const std::string path = "/nonexistent-cxr-folder/sub/ckpt.safetensors";
  const std::string expected = "cannot write " + path;
  CHECK_THROWS_WITH_AS(write_safetensors(path, {{"a", Tensor::zeros({2})}}), doctest::Contains(expected.c_str()),
                       cxr::Error);
  CHECK_THROWS_WITH_AS(write_safetensors(path, {{"a", Tensor::zeros({2})}}), doctest::Contains("No such file"),
                       cxr::Error);
  // /proc accepts no new files, even from root.
  CHECK_THROWS_AS(write_safetensors("/proc/cxr-test.safetensors", {{"a", Tensor::zeros({2})}}), cxr::Error);
  if (::geteuid() != 0) {
    const fs::path dir = scratch_dir("readonly");
    ::chmod(dir.c_str(), 0555);
    CHECK_THROWS_WITH_AS(write_safetensors((dir / "x.safetensors").string(), {{"a", Tensor::zeros({2})}}),
                         doctest::Contains("Permission denied"), cxr::Error);
    ::chmod(dir.c_str(), 0755);
    CHECK(no_temp_files(dir));
    fs::remove_all(dir);
  } else {
    MESSAGE("running as root: the chmod 0555 case is skipped (root writes anyway)");
  }
}

TEST_CASE("safetensors: a full disk mid-write keeps the old file and removes the temporary one") {
  const fs::path dir = scratch_dir("full");
  const std::string path = (dir / "ckpt.safetensors").string();
  write_safetensors(path, {{"old", Tensor::full({4}, 3.f)}});
  const std::string before = read_bytes(path);

  // RLIMIT_FSIZE: writes past 64 KiB fail with EFBIG (SIGXFSZ ignored meanwhile).
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    write_safetensors(path, {{"big", Tensor::zeros({1 << 16})}});  // 256 KiB
  } catch (const cxr::Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);

  CHECK(message.find("cannot write " + path) != std::string::npos);
  CHECK(message.find(std::strerror(EFBIG)) != std::string::npos);
  CHECK(read_bytes(path) == before);
  CHECK(no_temp_files(dir));
  fs::remove_all(dir);
}

TEST_CASE("to_f32_cpu converts f16 (normal, subnormal, inf), bf16, u8 and i32") {
  Tensor h = Tensor::empty({6}, DType::F16);
  const std::uint16_t hv[6] = {0x3c00, 0xc000, 0x0001, 0x7c00, 0x3555, 0x0000};
  std::memcpy(h.raw_data(), hv, sizeof hv);
  const auto v = to_f32_cpu(h).to_vector();
  CHECK(v[0] == 1.f);
  CHECK(v[1] == -2.f);
  CHECK(v[2] == std::ldexp(1.f, -24));
  CHECK(std::isinf(v[3]));
  CHECK(v[4] == doctest::Approx(0.33325195).epsilon(1e-7));
  CHECK(v[5] == 0.f);
  Tensor i = Tensor::empty({2}, DType::I32);
  i.data<std::int32_t>()[0] = -5;
  i.data<std::int32_t>()[1] = 1 << 20;
  CHECK(to_f32_cpu(i).to_vector() == std::vector<float>{-5.f, 1048576.f});
}

}  // TEST_SUITE
