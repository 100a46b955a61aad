// Data pipeline throughput (Google Benchmark):
//   BM_PngDecode/threads:T   decode of the real 1024x1024 radiograph from memory, T threads
//                            (16 decodes per iteration shared by the threads)
//   BM_LoaderPng/workers:W   the whole loader (decode, resize to 224, augment, normalise) on
//                            64 copies of that radiograph, W worker threads
//   BM_LoaderCache/workers:W the same from the memory-mapped 224 cache
//   BM_HostToDevice/MiB      pinned host -> GPU copy bandwidth (skipped without a GPU)
// items_per_second is images/s (bytes_per_second for the copy). The real radiograph is read
// from ../shared/data/nih ($CXR_SHARED_DATA/nih overrides); without it the image benchmarks
// report an error and do nothing.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "data/dataset.h"
#include "data/image_io.h"
#include "data/loader.h"
#include "tensor/backend.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

namespace fs = std::filesystem;
using namespace cxr;

namespace {

constexpr int kCopies = 64;
constexpr const char* kImage = "00009285_000.png";  // 1024 x 1024, 8-bit gray

std::optional<fs::path> nih_dir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("CXR_SHARED_DATA")) candidates.push_back(fs::path(env) / "nih");
  candidates.push_back(fs::path(__FILE__).parent_path().parent_path().parent_path() / "shared" / "data" / "nih");
  for (const auto& c : candidates)
    if (fs::exists(c / "images" / kImage)) return c;
  return std::nullopt;
}

// A data set folder of kCopies copies of the real radiograph, made once.
const std::string* replicated_dir() {
  static std::optional<std::string> dir = []() -> std::optional<std::string> {
    const auto nih = nih_dir();
    if (!nih) return std::nullopt;
    const fs::path root = fs::temp_directory_path() / ("cxr_bench_loader_" + std::to_string(::getpid()));
    fs::create_directories(root / "images");
    std::ofstream csv(root / "Data_Entry_2017_v2020.csv");
    csv << "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
           "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n";
    for (int i = 0; i < kCopies; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "%08d_000.png", i + 1);
      fs::copy_file(*nih / "images" / kImage, root / "images" / name, fs::copy_options::overwrite_existing);
      csv << name << ",Effusion,0," << i + 1 << ",42,M,PA,2422,2709,0.143,0.143\n";
    }
    return root.string();
  }();
  static struct Cleanup {
    ~Cleanup() {
      std::error_code ec;
      if (dir) fs::remove_all(*dir, ec);
    }
  } cleanup;
  return dir ? &*dir : nullptr;
}

// Each iteration decodes 16 copies of the image, split over `threads` std::threads, so
// items_per_second is the total throughput of all threads.
// Process CPU time (all threads) per image: 1000 / this is the throughput of one core,
// whatever else the machine is running.
void set_cpu_per_image(benchmark::State& state, std::clock_t start, std::int64_t images) {
  const double cpu_s = static_cast<double>(std::clock() - start) / CLOCKS_PER_SEC;
  state.counters["cpu_ms_per_image"] = images > 0 ? 1000.0 * cpu_s / static_cast<double>(images) : 0.0;
}

void BM_PngDecode(benchmark::State& state) {
  const auto nih = nih_dir();
  if (!nih) {
    state.SkipWithError("../shared/data/nih is absent");
    return;
  }
  const auto bytes = data::read_file_bytes((*nih / "images" / kImage).string());
  const int threads = static_cast<int>(state.range(0));
  constexpr int kPerIteration = 16;
  const std::clock_t cpu0 = std::clock();
  for (auto _ : state) {
    std::atomic<int> next{0};
    auto work = [&] {
      while (next++ < kPerIteration) {
        const data::GrayImage img = data::decode_gray8(bytes.data(), bytes.size(), kImage);
        benchmark::DoNotOptimize(img.pixels.data());
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  state.SetItemsProcessed(state.iterations() * kPerIteration);
  set_cpu_per_image(state, cpu0, state.iterations() * kPerIteration);
}
BENCHMARK(BM_PngDecode)->ArgName("threads")->DenseRange(1, 4)->UseRealTime()->Unit(benchmark::kMillisecond);

void run_loader(benchmark::State& state, bool cached) {
  const std::string* dir = replicated_dir();
  if (!dir) {
    state.SkipWithError("../shared/data/nih is absent");
    return;
  }
  data::Report report(data::Report::Echo::Off);
  const data::Dataset ds = data::Dataset::load(*dir, report);
  std::vector<std::int64_t> all;
  for (std::int64_t i = 0; i < ds.size(); ++i) all.push_back(i);
  data::LoaderOptions o;
  o.batch_size = 16;
  o.image_size = 224;
  o.workers = static_cast<int>(state.range(0));
  o.augment = true;
  o.shuffle = true;
  if (cached) o.cache_dir = *dir + "/cache";
  data::DataLoader loader(ds, all, o, report);  // builds the cache (untimed) on first use
  std::int64_t epoch = 0, images = 0;
  const std::clock_t cpu0 = std::clock();
  for (auto _ : state) {
    for (const data::Batch& b : loader.epoch(epoch++)) images += b.size();
  }
  state.SetItemsProcessed(images);
  set_cpu_per_image(state, cpu0, images);
}

void BM_LoaderPng(benchmark::State& state) { run_loader(state, false); }
void BM_LoaderCache(benchmark::State& state) { run_loader(state, true); }
BENCHMARK(BM_LoaderPng)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoaderCache)->ArgName("workers")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_HostToDevice(benchmark::State& state) {
  if (backend::is_emulated() || !backend::has_device()) {
    state.SkipWithError("no GPU: host-to-device bandwidth not measured");
    return;
  }
  const std::int64_t n = state.range(0) * (1 << 20) / 4;
  Tensor host = Tensor::empty_pinned({n});
  host.fill_(1.f);
  Tensor device = Tensor::empty({n}, DType::F32, Device::CUDA);
  Stream stream;
  for (auto _ : state) {
    device.copy_async_(host, stream);
    stream.synchronize();
  }
  state.SetBytesProcessed(state.iterations() * n * 4);
}
BENCHMARK(BM_HostToDevice)->ArgName("MiB")->Arg(4)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
