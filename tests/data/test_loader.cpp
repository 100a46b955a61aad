// DataLoader: deterministic batches whatever the worker count, clean shutdown mid-epoch,
// bounded waiting, bad files skipped and counted (or errors with strict), the cache
// (build, reuse, invalidation), weighted sampling and the device transfer.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "data/cache.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/splits.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tests/data/data_test_util.h"

using namespace cxr;
using namespace cxr::data;
namespace fs = std::filesystem;

namespace {

std::vector<std::int64_t> all_indices(const Dataset& ds) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < ds.size(); ++i) v.push_back(i);
  return v;
}

struct Snapshot {
  std::vector<float> images, labels, boxes, mask;
  std::vector<std::int64_t> indices;
  bool operator==(const Snapshot&) const = default;
};

std::vector<Snapshot> run_epoch(DataLoader& loader, std::int64_t epoch) {
  std::vector<Snapshot> out;
  for (const Batch& b : loader.epoch(epoch))
    out.push_back({b.images.to_vector(), b.labels.to_vector(), b.boxes.to_vector(), b.box_mask.to_vector(), b.indices});
  return out;
}

LoaderOptions training_options(int workers) {
  LoaderOptions o;
  o.batch_size = 8;
  o.image_size = 48;
  o.workers = workers;
  o.seed = 11;
  o.augment = true;
  o.shuffle = true;
  return o;
}

// A copy of the small synthetic set (metadata and images) that a test may damage.
void copy_dataset(const std::string& from, const std::string& to) {
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("loader: batch shapes, labels and names match the records") {
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  LoaderOptions o;
  o.batch_size = 5;
  o.image_size = 32;
  o.workers = 2;
  DataLoader loader(ds, all_indices(ds), o, report);
  CHECK(loader.batches_per_epoch() == 10);  // 48 images, last batch of 3
  std::int64_t seen = 0;
  for (const Batch& b : loader.epoch(0)) {
    CHECK(b.images.shape() == Shape{b.size(), 3, 32, 32});
    CHECK(b.labels.shape() == Shape{b.size(), 14});
    CHECK(b.boxes.shape() == Shape{b.size(), 14, 4});
    CHECK(b.box_mask.shape() == Shape{b.size(), 14});
    CHECK(b.images.is_pinned());
    const auto labels = b.labels.to_vector();
    const auto mask = b.box_mask.to_vector();
    for (std::int64_t r = 0; r < b.size(); ++r) {
      CHECK(b.indices[static_cast<std::size_t>(r)] == seen);  // no shuffle: data set order
      const ImageRecord& rec = ds.record(seen);
      CHECK(b.names[static_cast<std::size_t>(r)] == rec.name);
      for (int k = 0; k < 14; ++k) CHECK(labels[static_cast<std::size_t>(r * 14 + k)] == (has_label(rec.labels, k) ? 1.f : 0.f));
      int boxes = 0;
      for (int k = 0; k < 14; ++k) boxes += mask[static_cast<std::size_t>(r * 14 + k)] == 1.f;
      CHECK(boxes == static_cast<int>(rec.boxes.size()));
      ++seen;
    }
  }
  CHECK(seen == 48);
  CHECK(loader.stats().images == 48);
  CHECK(loader.stats().skipped == 0);
  CHECK(loader.summary().find("48 images in 10 batches, 0 skipped") != std::string::npos);
  LoaderOptions drop = o;
  drop.drop_last = true;
  CHECK(DataLoader(ds, all_indices(ds), drop, report).batches_per_epoch() == 9);
}

TEST_CASE("loader: 1 and 3 workers give identical batches; epochs differ") {
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  DataLoader one(ds, all_indices(ds), training_options(1), report);
  DataLoader three(ds, all_indices(ds), training_options(3), report);
  const auto a0 = run_epoch(one, 0), b0 = run_epoch(three, 0);
  const auto a1 = run_epoch(one, 1), b1 = run_epoch(three, 1);
  CHECK(a0.size() == 6);
  CHECK(a0 == b0);
  CHECK(a1 == b1);
  CHECK(a0[0].indices != a1[0].indices);  // reshuffled
  CHECK(run_epoch(one, 0) == a0);          // an epoch can be replayed
}

TEST_CASE("loader: automatic workers: as many as keep up with the consumer, and the same batches") {
  // The rule (choose_workers): ceil(1.25 x one worker's time per batch / the consumer's), 1..max.
  EpochStats st;
  st.batches = st.filled = 10;
  st.fill_seconds = 1.0;   // 100 ms to prepare a batch
  st.epoch_seconds = 2.5;  // 2.0 s of it consuming: 200 ms a batch
  st.wait_seconds = 0.5;
  CHECK(choose_workers(st, 8) == 1);  // 1.25 x 100 / 200 -> 1
  st.fill_seconds = 8.0;              // 800 ms a batch: 1.25 x 800 / 200 = 5
  CHECK(choose_workers(st, 8) == 5);
  CHECK(choose_workers(st, 3) == 3);  // at most the cores
  st.fill_seconds = 2.0;              // 1.25 x 200 / 200 = 1.25: 2
  CHECK(choose_workers(st, 8) == 2);
  CHECK(choose_workers(EpochStats{}, 8) == 2);  // no measurement yet: 2
  CHECK(choose_workers(EpochStats{}, 1) == 1);
  CHECK(max_auto_workers() >= 1);
  CHECK(max_auto_workers() <= 8);

  // A loader on auto: the first epoch's 2 workers (or 1 core's worth), measured; a consumer much
  // slower than the decoding then needs 1; every epoch holds the batches of a fixed count.
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  DataLoader fixed(ds, all_indices(ds), training_options(2), report);
  DataLoader automatic(ds, all_indices(ds), training_options(kAutoWorkers), report);
  for (std::int64_t e = 0; e < 3; ++e) {
    std::vector<Snapshot> got;
    for (const Batch& b : automatic.epoch(e)) {
      got.push_back({b.images.to_vector(), b.labels.to_vector(), b.boxes.to_vector(), b.box_mask.to_vector(),
                     b.indices});
      std::this_thread::sleep_for(std::chrono::milliseconds(40));  // a slow model step
    }
    CHECK(got == run_epoch(fixed, e));
    const EpochStats& a = automatic.stats();
    CHECK(a.workers == (e == 0 ? std::min(2, max_auto_workers()) : 1));
    CHECK(a.filled == 6);
    CHECK(a.fill_seconds > 0);
    CHECK(a.epoch_seconds >= 6 * 0.040);
    CHECK(automatic.summary().find(e == 0 && max_auto_workers() > 1 ? "2 workers (auto)" : "1 worker (auto)") !=
          std::string::npos);
  }
  LoaderOptions bad = training_options(-1);
  CHECK_THROWS_WITH_AS(DataLoader(ds, all_indices(ds), bad, report), doctest::Contains("at least one worker"), Error);
}

TEST_CASE("loader: stopping mid-epoch is clean, and a new epoch can start at once") {
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  LoaderOptions o = training_options(2);
  o.batch_size = 2;
  for (int round = 0; round < 5; ++round) {
    DataLoader loader(ds, all_indices(ds), o, report);
    loader.start_epoch(0);
    REQUIRE(loader.next() != nullptr);
    if (round % 2) loader.stop();
    // Destroyed with workers blocked on a full ring, or stopped first.
  }
  DataLoader loader(ds, all_indices(ds), o, report);
  loader.start_epoch(0);
  loader.next();
  loader.next();
  const auto full = run_epoch(loader, 1);  // restarts: epoch 0 is abandoned
  CHECK(full.size() == 24);
  CHECK(loader.next() == nullptr);
}

TEST_CASE("loader: the consumer does not wait when the workers keep up") {
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  LoaderOptions o = training_options(2);
  DataLoader loader(ds, all_indices(ds), o, report);
  for (const Batch& b : loader.epoch(0)) {
    (void)b;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));  // "compute"
  }
  // Six batches of 8 small images take a few ms to prepare; all but the first are ready.
  CHECK(loader.stats().batches == 6);
  CHECK(loader.stats().wait_seconds < 0.1);
}

TEST_CASE("loader: unreadable and missing images are skipped, named and counted; strict makes them errors") {
  test::TempDir dir("bad");
  copy_dataset(test::small_synth_dir(), dir.path());
  Report load_report(Report::Echo::Off);
  Dataset clean = Dataset::load(dir.path(), load_report);
  const std::string truncated = clean.record(3).name, missing = clean.record(10).name;
  fs::resize_file(dir / ("images/" + truncated), 60);
  fs::remove(dir / ("images/" + missing));
  test::write_text(dir / ("images/" + clean.record(20).name), "garbage");
  const std::string garbage = clean.record(20).name;

  const Dataset ds = Dataset::load(dir.path(), load_report);
  CHECK(ds.missing_images() == 1);
  Report report(Report::Echo::Off);
  LoaderOptions o;
  o.batch_size = 8;
  o.image_size = 32;
  DataLoader loader(ds, all_indices(ds), o, report);
  std::int64_t images = 0;
  for (const Batch& b : loader.epoch(0)) {
    images += b.size();
    for (const auto& n : b.names) CHECK((n != truncated && n != missing && n != garbage));
  }
  CHECK(images == 45);
  CHECK(loader.stats().skipped == 3);
  CHECK(loader.summary().find("3 skipped") != std::string::npos);
  CHECK(loader.summary().find(truncated) != std::string::npos);
  CHECK(report.contains("image " + truncated + " skipped"));
  CHECK(report.contains("image " + missing + " skipped: image " + missing + " not found"));
  CHECK(report.contains(garbage));

  o.strict = true;
  DataLoader strict(ds, all_indices(ds), o, report);
  strict.start_epoch(0);
  std::string message;
  try {
    while (strict.next()) {
    }
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find(truncated) != std::string::npos);
  CHECK(message.find("strict") != std::string::npos);
}

TEST_CASE("loader: a split where no image can be read, or an empty split, is an error that says why") {
  test::TempDir dir("none");
  test::write_text(dir / "Data_Entry_2017.csv",
                   "Image Index,Finding Labels,Follow-up #,Patient ID\na.png,Mass,0,1\nb.png,No Finding,0,2\n");
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(dir.path(), report);
  DataLoader loader(ds, all_indices(ds), LoaderOptions{}, report);
  loader.start_epoch(0);
  CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains("none of the 2 images could be read"), Error);
  CHECK_THROWS_WITH_AS(DataLoader(ds, {}, LoaderOptions{}, report), doctest::Contains("empty split"), Error);
  LoaderOptions big;
  big.batch_size = 10;
  big.drop_last = true;
  CHECK_THROWS_WITH_AS(DataLoader(ds, all_indices(ds), big, report), doctest::Contains("larger than the split"), Error);
}

TEST_CASE("cache: built once, reused, identical to decoding, rebuilt when list, size or version change") {
  test::TempDir data("cache_data"), cache("cache");
  copy_dataset(test::small_synth_dir(), data.path());
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(data.path(), report);
  LoaderOptions o = training_options(2);
  o.cache_dir = cache.path();
  o.cache_size = 64;  // the synthetic images' own size: the cache stores them unchanged
  std::vector<Snapshot> from_cache;
  {
    DataLoader loader(ds, all_indices(ds), o, report);
    REQUIRE(loader.cache() != nullptr);
    CHECK(loader.cache()->rebuilt());
    CHECK(loader.cache()->rebuild_reason() == "no cache file yet");
    from_cache = run_epoch(loader, 0);
  }
  {
    DataLoader loader(ds, all_indices(ds), o, report);
    CHECK_FALSE(loader.cache()->rebuilt());  // a later run reads the file
    CHECK(run_epoch(loader, 0) == from_cache);
  }
  LoaderOptions png = o;
  png.cache_dir.clear();
  DataLoader from_png(ds, all_indices(ds), png, report);
  CHECK(run_epoch(from_png, 0) == from_cache);

  CacheOptions c;
  c.dir = cache.path();
  c.size = 32;
  CHECK(ImageCache::open_or_build(ds, c, report).rebuild_reason() == "no cache file yet");  // another size
  CHECK_FALSE(ImageCache::open_or_build(ds, c, report).rebuilt());
  // Format version: patch the header's version field (bytes 8..11).
  {
    std::fstream f(cache_file_path(cache.path(), 32), std::ios::in | std::ios::out | std::ios::binary);
    const std::uint32_t old_version = 0;
    f.seekp(8);
    f.write(reinterpret_cast<const char*>(&old_version), 4);
  }
  const ImageCache rebuilt = ImageCache::open_or_build(ds, c, report);
  CHECK(rebuilt.rebuild_reason().find("format version 0") != std::string::npos);
  // Image list: one image fewer.
  fs::remove(data / ("images/" + ds.record(5).name));
  Report quiet(Report::Echo::Off);
  const Dataset fewer = Dataset::load(data.path(), quiet);
  const ImageCache changed = ImageCache::open_or_build(fewer, c, quiet);
  CHECK(changed.rebuild_reason() == "the image list changed");
  CHECK(changed.status(5) == CacheStatus::Missing);
  CHECK(changed.pixels(5) == nullptr);
  CHECK(changed.bad_images() == 1);
  CHECK(changed.source_width(0) == 64);
  CHECK(quiet.contains(ds.record(5).name));
}

TEST_CASE("loader: weighted sampling draws from the split, deterministically") {
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  std::vector<std::int64_t> subset;
  for (std::int64_t i = 0; i < ds.size(); i += 2) subset.push_back(i);
  LoaderOptions o = training_options(2);
  o.weighted_sampling = true;
  DataLoader a(ds, subset, o, report), b(ds, subset, o, report);
  const auto ea = run_epoch(a, 0);
  CHECK(ea == run_epoch(b, 0));
  std::int64_t n = 0;
  for (const auto& s : ea)
    for (auto i : s.indices) {
      CHECK(i % 2 == 0);
      ++n;
    }
  CHECK(n == static_cast<std::int64_t>(subset.size()));
}

TEST_CASE("loader: batches on the CUDA device equal the host batches") {
  if (!backend::has_device() && !backend::is_emulated()) {
    MESSAGE("skipped: no CUDA device");
    return;
  }
  Report report(Report::Echo::Off);
  const Dataset ds = Dataset::load(test::small_synth_dir(), report);
  LoaderOptions o = training_options(2);
  DataLoader host(ds, all_indices(ds), o, report);
  o.device = Device::CUDA;
  DataLoader device(ds, all_indices(ds), o, report);
  const auto h = run_epoch(host, 2);
  std::vector<Snapshot> d;
  for (const Batch& b : device.epoch(2)) {
    CHECK(b.images.is_cuda());
    d.push_back({b.images.to_vector(), b.labels.to_vector(), b.boxes.to_vector(), b.box_mask.to_vector(), b.indices});
  }
  CHECK(h == d);
}

}  // TEST_SUITE
