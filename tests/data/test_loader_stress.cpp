// The loader under stress (docs/reliability.md): 10,000 tiny PNGs of which 5% are broken
// (truncated, garbage, missing), 8 workers (more than the cores of CI), epochs stopped
// mid-way while workers decode or wait for a free slot, and the loader destroyed mid-epoch.
// Checked: no deadlock (a watchdog ends the process after 120 s), every broken file named
// exactly once per epoch in the warnings and never a good one, the counts; leaks are
// ASan's (the sanitize preset runs this test). Under a sanitizer the data set has 2,000
// images (same 5% broken) so that the test stays in seconds there too; ~2 s in Release.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "data/dataset.h"
#include "data/loader.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kStressImages = 2000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr int kStressImages = 2000;
#else
constexpr int kStressImages = 10000;
#endif
#else
constexpr int kStressImages = 10000;
#endif

// Ends the process if the test body has not finished in time: a deadlock fails, never hangs.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "loader stress test: no progress after %lld s: deadlock? aborting\n",
                         static_cast<long long>(limit.count()));
            std::fflush(stderr);
            std::_Exit(1);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

std::string image_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "s%05d.png", i);
  return buf;
}

// The broken files: every 20th image, in turn truncated, garbage and missing.
struct StressData {
  std::set<std::string> broken;
};

StressData write_stress_dataset(const std::string& dir, int n) {
  StressData d;
  fs::create_directories(dir + "/images");
  std::vector<std::uint16_t> px(64);
  std::ofstream csv(dir + "/Data_Entry_2017.csv");
  csv << "Image Index,Finding Labels,Follow-up #,Patient ID\n";
  for (int i = 0; i < n; ++i) {
    const std::string name = image_name(i);
    csv << name << "," << (i % 3 == 0 ? "Mass" : "No Finding") << ",0," << i + 1 << "\n";
    for (int k = 0; k < 64; ++k) px[static_cast<std::size_t>(k)] = static_cast<std::uint16_t>((i * 7 + k * 3) & 255);
    std::vector<std::uint8_t> png = test::encode_png(px, 8, 8, 1, 8);
    const std::string path = dir + "/images/" + name;
    if (i % 20 == 7) {
      d.broken.insert(name);
      const int kind = (i / 20) % 3;
      if (kind == 0) png.resize(png.size() / 2);                                  // truncated
      else if (kind == 1) for (auto& b : png) b = static_cast<std::uint8_t>(b * 31 + 17);  // garbage
      else continue;                                                              // missing
    }
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  }
  return d;
}

// name -> how often a warning "image NAME skipped" names it.
std::map<std::string, int> skipped_names(const Report& report) {
  std::map<std::string, int> m;
  for (const auto& msg : report.messages()) {
    if (msg.rfind("image ", 0) != 0) continue;
    const auto end = msg.find(" skipped");
    if (end == std::string::npos) continue;
    ++m[msg.substr(6, end - 6)];
  }
  return m;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("loader stress: 10,000 tiny PNGs (2,000 under ASan), 5% broken, 8 workers, stops mid-epoch: no "
          "deadlock, each broken file named once") {
  Watchdog watchdog(std::chrono::seconds(120));
  const auto t0 = std::chrono::steady_clock::now();
  test::TempDir dir("loader_stress");
  const StressData sd = write_stress_dataset(dir.path(), kStressImages);
  Report load_report(Report::Echo::Off);
  const Dataset ds = Dataset::load(dir.path(), load_report);
  REQUIRE(ds.size() == kStressImages);
  std::vector<std::int64_t> idx(static_cast<std::size_t>(ds.size()));
  for (std::int64_t i = 0; i < ds.size(); ++i) idx[static_cast<std::size_t>(i)] = i;

  LoaderOptions o;
  o.batch_size = 32;
  o.image_size = 8;
  o.workers = 8;
  o.shuffle = true;
  o.augment = true;
  o.seed = 11;
  {
    // A full epoch: every good image once, every broken file named exactly once.
    Report report(Report::Echo::Off, 0, 100000);
    DataLoader loader(ds, idx, o, report);
    std::int64_t images = 0;
    std::set<std::int64_t> seen;
    for (const Batch& b : loader.epoch(0)) {
      images += b.size();
      for (auto i : b.indices) seen.insert(i);
    }
    CHECK(images == kStressImages - static_cast<std::int64_t>(sd.broken.size()));
    CHECK(static_cast<std::int64_t>(seen.size()) == images);
    CHECK(loader.stats().skipped == static_cast<std::int64_t>(sd.broken.size()));
    const auto named = skipped_names(report);
    CHECK(named.size() == sd.broken.size());
    int wrong = 0;
    for (const auto& [name, count] : named)
      if (count != 1 || !sd.broken.count(name)) {
        if (wrong++ < 5) MESSAGE(name << " named " << count << " times, broken: " << sd.broken.count(name));
      }
    CHECK(wrong == 0);

    // Stopped mid-epoch while the workers race ahead, then a new epoch, then stopped again
    // while the ring is full (the workers wait for a free slot).
    int k = 0;
    for (const Batch& b : loader.epoch(1)) {
      (void)b;
      if (++k == 10) break;
    }
    loader.stop();
    loader.start_epoch(2);
    CHECK(loader.next() != nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the ring fills up
    loader.stop();
    // Resumption at a batch: the same batches as from the start.
    loader.start_epoch(3);
    std::map<std::int64_t, std::vector<std::int64_t>> from_start;  // batch number -> indices
    while (const Batch* b = loader.next()) from_start[b->number] = b->indices;
    const std::int64_t first = loader.batches_per_epoch() / 2;
    loader.start_epoch(3, first);
    std::int64_t matched = 0, compared = 0;
    while (const Batch* b = loader.next()) {
      ++compared;
      CHECK(b->number >= first);
      if (from_start.count(b->number) && from_start[b->number] == b->indices) ++matched;
    }
    CHECK(compared > 0);
    CHECK(matched == compared);
    // The destructor ends an epoch in full flight.
    loader.start_epoch(4);
    CHECK(loader.next() != nullptr);
  }
  {
    // A loader destroyed before its first batch was taken.
    Report report(Report::Echo::Off);
    DataLoader loader(ds, idx, o, report);
    loader.start_epoch(0);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE(kStressImages << " images, " << sd.broken.size() << " broken, in " << seconds << " s");
}

}  // TEST_SUITE
