// DataLoader: worker threads decode and augment samples into a ring of batch buffers in
// pinned host memory; batches reach the device with asynchronous copies on their own stream.
//
//   DataLoader loader(dataset, splits.train, {.batch_size = 32, .workers = 4, .augment = true,
//                                             .shuffle = true, .device = Device::CUDA});
//   for (int e = 0; e < epochs; ++e) {
//     for (const Batch& b : loader.epoch(e)) { ... b.images: (n, 3, S, S) on the GPU ... }
//     std::printf("%s\n", loader.summary().c_str());
//   }
//
// Determinism: batch b of epoch e holds the same samples, augmented alike, whatever the
// number of workers or their timing: the order is a function of (seed, epoch) and each
// sample's augmentation a function of (seed, epoch, index).
//
// Memory: `prefetch` batches in pinned host memory (+ two on the device); workers wait
// when all are full, so memory stays bounded whatever the speed of the consumer. While the
// workers keep up, next() returns at once (stats().wait_seconds measures the stalls).
//
// Lifetime: the Dataset must outlive the loader. A Batch (and its tensors) is valid until
// the next call to next() / the iterator increment, stop() or the loader's destruction.
// On the GPU, the copy of batch k+1 runs on the copy stream while the compute stream still
// works on batch k; the compute stream waits on an event before it reads the batch, so the
// consumer needs no synchronisation.
//
// Bad input: an unreadable, truncated or missing image is skipped with a warning naming the
// file (the batch is then shorter) and counted in stats(); with strict = true it is an error,
// rethrown by next(). An epoch in which no image at all could be read is an error. Each bad
// file is named once per epoch (tests/data/test_loader_stress.cpp: 10,000 images, 5% bad).
//
// Stopping: stop() (or the destructor, or start_epoch) at any point, also while workers wait
// for a free slot or decode, wakes and joins them: no deadlock, no leak.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "data/cache.h"
#include "data/dataset.h"
#include "data/report.h"
#include "data/sample.h"
#include "tensor/stream.h"
#include "tensor/tensor.h"

namespace cxr::data {

struct LoaderOptions {
  int batch_size = 16;
  int image_size = 224;
  // Worker threads; kAutoWorkers (0): chosen per epoch from measurements (choose_workers), at
  // most max_auto_workers() of them.
  int workers = 2;
  int prefetch = 0;          // host batch buffers in the ring; 0: workers + 2
  std::uint64_t seed = 0;
  bool augment = false;      // training only
  AugmentOptions augment_options;
  NormalizeOptions normalize;
  bool shuffle = false;
  bool drop_last = false;
  bool weighted_sampling = false;  // draw len(indices) samples per epoch, with replacement
  // Given (one per entry of indices): weighted sampling with these weights instead of the
  // class-balancing ones (per-data-set weights of a run on several sets).
  std::vector<double> sample_weights;
  bool strict = false;
  Device device = Device::CPU;
  std::string cache_dir;     // "" : decode the PNG files every epoch
  int cache_size = 0;        // cache resolution; 0: image_size
  // Data-parallel training (docs/distributed.md): batch b is this rank's part of global batch b
  // of batch_size x world_size samples of the epoch order, which is the single-process order.
  // The parts are contiguous and as even as possible (full batches: batch_size each), so the
  // ranks together see exactly the batches one process with batch_size x world_size would.
  int rank = 0, world_size = 1;
  // The run's label space: output k is global finding label_findings[k] (LabelSpace::findings);
  // empty: the 14 NIH classes.
  std::vector<int> label_findings;
};

// This rank's part [begin, end) of the positions [lo, hi): contiguous, the first (hi - lo) %
// world ranks one longer.
std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t lo, std::int64_t hi, int rank, int world);

struct Batch {
  Tensor images;    // f32 (n, C, S, S), normalised
  Tensor labels;    // f32 (n, K), 0 / 1 (K: the label space, 14 for NIH)
  Tensor boxes;     // f32 (n, K, 4), (cx, cy, w, h) in [0, 1] of the resized image
  Tensor box_mask;  // f32 (n, K), 1 where the image has a box of that class
  // f32 (n, K), 1 where the label is present, 0 where missing. Undefined when no sample of the
  // loader's indices misses a label of the space (an NIH run): the loss is then unmasked.
  Tensor label_mask;
  std::vector<std::int64_t> indices;  // data set record of each row
  std::vector<std::string> names;     // its image file name
  std::int64_t number = 0;            // batch number in the epoch
  std::int64_t first_position = 0;    // position in the epoch order of this part's first sample
  double box_count = 0;               // Σ box_mask, counted on the host
  double label_count = 0;             // Σ label_mask (n K without a mask), on the host
  std::int64_t size() const { return static_cast<std::int64_t>(indices.size()); }
};

struct EpochStats {
  std::int64_t epoch = 0;
  std::int64_t batches = 0, images = 0, skipped = 0;
  std::vector<std::string> skipped_names;  // the first 100
  double wait_seconds = 0;  // time next() spent waiting for the workers
  // Set when the epoch's workers have been joined (its end, or stop()):
  int workers = 0;               // worker threads of the epoch
  std::int64_t filled = 0;       // batches the workers filled
  double fill_seconds = 0;       // their time filling them (decode, augment, normalise), summed
  double epoch_seconds = 0;      // from the epoch's start to its end
};

// Automatic worker count (LoaderOptions::workers = kAutoWorkers): the first epoch runs
// min(2, max_auto_workers()) workers; each later one as many as keep up with the consumer in
// the epoch before, with a quarter to spare:
//   fill = fill_seconds / filled          one worker's time for a batch
//   step = (epoch_seconds - wait_seconds) / batches   the consumer's time for one, without waits
//   workers = ceil(1.25 fill / step), between 1 and max_auto_workers()
// A worker waits (no CPU) while the ring is full, so a spare one costs a batch buffer, not a
// core. Which samples a batch holds never depends on the count (see Determinism above).
inline constexpr int kAutoWorkers = 0;
int max_auto_workers();  // the cores this process may run on, at most 8
int choose_workers(const EpochStats& last, int max_workers);
// The two times of the rule, from an ended epoch's stats (seconds per batch).
double prepare_seconds_per_batch(const EpochStats& s);  // fill_seconds / filled
double train_seconds_per_batch(const EpochStats& s);    // (epoch_seconds - wait_seconds) / batches

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, std::vector<std::int64_t> indices, LoaderOptions options,
             Report& report = default_report());
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Starts epoch e (ending any unfinished one) and returns a range over its batches.
  // first_batch > 0 starts at that batch (mid-epoch resumption): batches first_batch, ... are
  // the same samples, augmented alike, as in a run from the epoch's start.
  class Range;
  Range epoch(std::int64_t e, std::int64_t first_batch = 0);

  void start_epoch(std::int64_t e, std::int64_t first_batch = 0);
  // Starts epoch e at position `sample` of its order (a resumed run whose global batch changed
  // with the number of ranks): batches then run from there in steps of the global batch.
  void start_epoch_at_sample(std::int64_t e, std::int64_t sample);
  const Batch* next();  // nullptr at the end of the epoch
  void stop();          // ends the epoch early: workers stop and are joined

  std::int64_t batches_per_epoch() const { return num_batches_; }
  int workers() const { return workers_now_; }  // this epoch's worker threads (the last one's after it)
  std::int64_t global_batch() const { return static_cast<std::int64_t>(opt_.batch_size) * opt_.world_size; }
  // The position in the epoch order after batch `number` (a resume point), for any rank.
  std::int64_t position_after(std::int64_t number) const;
  std::int64_t samples_per_epoch() const { return static_cast<std::int64_t>(indices_.size()); }
  const EpochStats& stats() const { return stats_; }
  std::string summary() const;  // "epoch 2: 1200 images in 75 batches, 1 skipped (a.png)"
  const LoaderOptions& options() const { return opt_; }
  const ImageCache* cache() const { return cache_ ? &*cache_ : nullptr; }
  int classes() const { return sample_opt_.classes(); }
  bool has_missing_labels() const { return masked_; }

 private:
  struct Slot;
  void worker_main();
  void fill(Slot& slot, std::int64_t batch_number, SampleScratch& scratch);
  void release_current();
  std::vector<std::int64_t> epoch_order(std::int64_t e) const;

  const Dataset& dataset_;
  std::vector<std::int64_t> indices_;
  LoaderOptions opt_;
  Report& report_;
  SampleOptions sample_opt_;
  std::optional<ImageCache> cache_;
  std::vector<double> weights_cdf_;  // weighted sampling
  bool masked_ = false;              // some sample misses a label: batches carry label_mask
  std::int64_t num_batches_ = 0;

  // Ring of host batches.
  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  int workers_now_ = 0;
  double fill_seconds_ = 0;       // this epoch's EpochStats::fill_seconds so far (under mutex_)
  std::int64_t filled_ = 0;       // and its filled
  std::chrono::steady_clock::time_point epoch_start_;
  std::atomic<bool> stopping_{false};
  bool active_ = false;  // an epoch is running
  std::int64_t epoch_ = -1;
  std::vector<std::int64_t> order_;
  std::int64_t next_claim_ = 0;    // next batch a worker will fill
  std::int64_t released_ = 0;      // batches 0..released_-1 are free again
  std::int64_t next_return_ = 0;   // next batch next() returns
  std::int64_t first_batch_ = 0;   // where this epoch started
  std::int64_t end_batch_ = 0;     // one past its last batch
  std::int64_t origin_ = 0;        // batch k covers positions origin_ + k * global_batch() on
  std::optional<std::int64_t> held_;  // batch the consumer holds
  std::string first_failure_;  // of the epoch, for the error when it yields nothing

  // Device side: two batches of device buffers, a copy stream and events.
  struct DeviceSet;
  std::vector<std::unique_ptr<DeviceSet>> device_sets_;
  std::unique_ptr<Stream> copy_stream_;

  Batch batch_;
  EpochStats stats_;
};

class DataLoader::Range {
 public:
  struct End {};
  class Iterator {
   public:
    Iterator(DataLoader* loader, const Batch* batch) : loader_(loader), batch_(batch) {}
    const Batch& operator*() const { return *batch_; }
    const Batch* operator->() const { return batch_; }
    Iterator& operator++() {
      batch_ = loader_->next();
      return *this;
    }
    bool operator!=(End) const { return batch_ != nullptr; }
    bool operator==(End) const { return batch_ == nullptr; }

   private:
    DataLoader* loader_;
    const Batch* batch_;
  };
  explicit Range(DataLoader* loader) : loader_(loader) {}
  Iterator begin() { return Iterator(loader_, loader_->next()); }
  End end() { return {}; }

 private:
  DataLoader* loader_;
};

}  // namespace cxr::data
