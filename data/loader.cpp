// DataLoader: the ring of pinned batches, the worker threads and the device transfers.
//
// Ring protocol (all under mutex_): batch b lives in slot b % R. A worker may claim batch b
// only when b < released_ + R, i.e. when batch b - R has been released by the consumer (and,
// on the GPU, its copy has finished). Workers fill slots in any order and at any speed; the
// consumer takes batches strictly in order 0, 1, 2, ...
#include "data/loader.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "data/class_balance.h"
#include "data/image_io.h"
#include "data/random.h"
#include "tensor/error.h"

namespace cxr::data {

struct DataLoader::Slot {
  Tensor images, labels, boxes, box_mask, label_mask;  // pinned host, full batch size
  std::int64_t ready_batch = -1;           // the batch this slot holds, once filled
  std::int64_t count = 0;                  // samples written
  std::int64_t first_position = 0;         // in the epoch order
  std::vector<std::int64_t> indices;
  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::string>> skipped;  // (name, reason)
  std::exception_ptr error;                // strict mode: the first bad image
};

struct DataLoader::DeviceSet {
  Tensor images, labels, boxes, box_mask, label_mask;  // on the device, full batch size
  Event copied;    // on the copy stream, after the batch's copies
  Event consumed;  // on the compute stream, when the consumer moved past the batch
  bool used = false;
};

DataLoader::DataLoader(const Dataset& dataset, std::vector<std::int64_t> indices, LoaderOptions options,
                       Report& report)
    : dataset_(dataset), indices_(std::move(indices)), opt_(std::move(options)), report_(report) {
  CXR_CHECK(!indices_.empty(), "the data loader was given an empty split: no image to load from ", dataset_.root);
  CXR_CHECK(opt_.batch_size > 0, "batch size must be positive, got ", opt_.batch_size);
  CXR_CHECK(opt_.image_size > 0, "image size must be positive, got ", opt_.image_size);
  CXR_CHECK(opt_.workers >= 1 || opt_.workers == kAutoWorkers, "the loader needs at least one worker (or ",
            kAutoWorkers, ": automatic), got ", opt_.workers);
  CXR_CHECK(opt_.world_size >= 1 && opt_.rank >= 0 && opt_.rank < opt_.world_size, "loader: rank ", opt_.rank,
            " of ", opt_.world_size, " processes");
  for (auto i : indices_)
    CXR_CHECK(i >= 0 && i < dataset_.size(), "loader index ", i, " outside the data set [0, ", dataset_.size(), ")");
  const auto n = static_cast<std::int64_t>(indices_.size());
  const std::int64_t gb = global_batch();
  num_batches_ = opt_.drop_last ? n / gb : (n + gb - 1) / gb;
  CXR_CHECK(num_batches_ > 0, "batch size ", gb, opt_.world_size > 1 ? " (over all ranks)" : "",
            " is larger than the split (", n, " images) and drop_last is on: an epoch would be empty");
  CXR_CHECK(opt_.world_size == 1 || opt_.drop_last || n >= opt_.world_size, "loader: ", n, " images cannot be "
            "shared by ", opt_.world_size, " ranks (each needs at least one per batch)");

  sample_opt_.image_size = opt_.image_size;
  sample_opt_.augment = opt_.augment;
  sample_opt_.augment_options = opt_.augment_options;
  sample_opt_.normalize = opt_.normalize;
  sample_opt_.seed = opt_.seed;
  sample_opt_.label_findings = opt_.label_findings;
  sample_opt_.set_findings = dataset_.findings;
  {
    const int K = sample_opt_.classes();
    LabelMask space = 0;
    bool unknown = false;
    for (int k = 0; k < K; ++k) {
      const int g = opt_.label_findings.empty() ? k : opt_.label_findings[static_cast<std::size_t>(k)];
      CXR_CHECK(g < kNumFindings, "loader: finding index ", g, " outside the label space");
      CXR_CHECK(g < 0 || !has_label(space, g), "loader: finding ", g, " twice in the label space");
      if (g < 0) unknown = true;
      else space |= bit(g);
    }
    masked_ = unknown;
    for (auto i : indices_) masked_ = masked_ || (space & ~(dataset_.findings & dataset_.record(i).known)) != 0;
  }

  CXR_CHECK(opt_.sample_weights.empty() || opt_.sample_weights.size() == indices_.size(), "loader: ",
            opt_.sample_weights.size(), " sample weights for ", indices_.size(), " images");
  if (!opt_.sample_weights.empty()) opt_.weighted_sampling = true;
  if (opt_.weighted_sampling) {
    const auto w = opt_.sample_weights.empty() ? sampling_weights(dataset_, indices_) : opt_.sample_weights;
    double total = 0;
    for (double v : w) weights_cdf_.push_back(total += v);
  }
  if (!opt_.cache_dir.empty()) {
    CacheOptions c;
    c.dir = opt_.cache_dir;
    c.size = opt_.cache_size > 0 ? opt_.cache_size : opt_.image_size;
    c.threads = opt_.workers == kAutoWorkers ? max_auto_workers() : opt_.workers;
    c.strict = opt_.strict;
    cache_.emplace(ImageCache::open_or_build(dataset_, c, report_));
  }

  const int most_workers = opt_.workers == kAutoWorkers ? max_auto_workers() : opt_.workers;
  const int ring = opt_.prefetch > 0 ? opt_.prefetch : most_workers + 2;
  const std::int64_t B = opt_.batch_size, S = opt_.image_size, C = opt_.normalize.channels, K = classes();
  for (int r = 0; r < ring; ++r) {
    auto s = std::make_unique<Slot>();
    s->images = Tensor::empty_pinned({B, C, S, S});
    s->labels = Tensor::empty_pinned({B, K});
    s->boxes = Tensor::empty_pinned({B, K, 4});
    s->box_mask = Tensor::empty_pinned({B, K});
    if (masked_) s->label_mask = Tensor::empty_pinned({B, K});
    slots_.push_back(std::move(s));
  }
  if (opt_.device != Device::CPU) {
    copy_stream_ = std::make_unique<Stream>();
    for (int d = 0; d < 2; ++d) {
      auto set = std::make_unique<DeviceSet>();
      set->images = Tensor::empty({B, C, S, S}, DType::F32, opt_.device);
      set->labels = Tensor::empty({B, K}, DType::F32, opt_.device);
      set->boxes = Tensor::empty({B, K, 4}, DType::F32, opt_.device);
      set->box_mask = Tensor::empty({B, K}, DType::F32, opt_.device);
      if (masked_) set->label_mask = Tensor::empty({B, K}, DType::F32, opt_.device);
      device_sets_.push_back(std::move(set));
    }
  }
}

DataLoader::~DataLoader() {
  try {
    stop();
  } catch (...) {
    // Destructors do not throw; stop() only fails if the device is already broken.
  }
}

DataLoader::Range DataLoader::epoch(std::int64_t e, std::int64_t first_batch) {
  start_epoch(e, first_batch);
  return Range(this);
}

std::vector<std::int64_t> DataLoader::epoch_order(std::int64_t e) const {
  const auto n = indices_.size();
  std::vector<std::int64_t> order;
  if (opt_.weighted_sampling) {
    Rng rng(hash_seed(opt_.seed, 0x3E1, static_cast<std::uint64_t>(e)));
    order.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const double u = rng.uniform() * weights_cdf_.back();
      auto j = static_cast<std::size_t>(std::upper_bound(weights_cdf_.begin(), weights_cdf_.end(), u) -
                                        weights_cdf_.begin());
      order.push_back(indices_[std::min(j, n - 1)]);
    }
  } else {
    order = indices_;
    if (opt_.shuffle) {
      Rng rng(hash_seed(opt_.seed, 0x5F1, static_cast<std::uint64_t>(e)));
      shuffle(order.data(), order.size(), rng);
    }
  }
  return order;
}

int max_auto_workers() {
  cpu_set_t set;
  const int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                                : static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(cores, 1, 8);
}

double prepare_seconds_per_batch(const EpochStats& s) {
  return s.fill_seconds / static_cast<double>(std::max<std::int64_t>(1, s.filled));
}

double train_seconds_per_batch(const EpochStats& s) {
  return (s.epoch_seconds - s.wait_seconds) / static_cast<double>(std::max<std::int64_t>(1, s.batches));
}

int choose_workers(const EpochStats& last, int max_workers) {
  max_workers = std::max(1, max_workers);
  if (last.batches <= 0 || last.filled <= 0) return std::min(2, max_workers);
  const double step = std::max(1e-6, train_seconds_per_batch(last));
  const double need = std::ceil(1.25 * prepare_seconds_per_batch(last) / step);
  return static_cast<int>(std::clamp(need, 1.0, static_cast<double>(max_workers)));
}

std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t lo, std::int64_t hi, int rank, int world) {
  const std::int64_t len = hi - lo, base = len / world, extra = len % world;
  const std::int64_t begin = lo + rank * base + std::min<std::int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

std::int64_t DataLoader::position_after(std::int64_t number) const {
  const auto n = static_cast<std::int64_t>(indices_.size());
  return std::min(n, origin_ + (number + 1) * global_batch());
}

void DataLoader::start_epoch(std::int64_t e, std::int64_t first_batch) {
  CXR_CHECK(first_batch >= 0 && first_batch <= num_batches_, "loader: first batch ", first_batch,
            " outside the epoch's [0, ", num_batches_, "] batches");
  start_epoch_at_sample(e, first_batch * global_batch());
}

void DataLoader::start_epoch_at_sample(std::int64_t e, std::int64_t sample) {
  const auto n = static_cast<std::int64_t>(indices_.size());
  CXR_CHECK(sample >= 0 && sample <= n, "loader: first sample ", sample, " outside the epoch's [0, ", n, "]");
  const std::int64_t gb = global_batch();
  const std::int64_t first_batch = sample / gb;
  stop();  // the workers of an unfinished epoch are joined before its grid changes
  origin_ = sample % gb;
  end_batch_ = first_batch + (opt_.drop_last ? (n - sample) / gb : (n - sample + gb - 1) / gb);
  order_ = epoch_order(e);
  epoch_ = e;
  stopping_ = false;
  first_batch_ = first_batch;
  next_claim_ = released_ = next_return_ = first_batch;
  for (auto& s : slots_) s->ready_batch = -1;
  // auto: from the last epoch's measurements (2 before the first one)
  const int workers = opt_.workers == kAutoWorkers ? choose_workers(stats_, max_auto_workers()) : opt_.workers;
  stats_ = EpochStats{};
  stats_.epoch = e;
  first_failure_.clear();
  fill_seconds_ = 0;
  filled_ = 0;
  epoch_start_ = std::chrono::steady_clock::now();
  active_ = true;
  workers_now_ = static_cast<int>(std::min<std::int64_t>(workers, end_batch_ - first_batch));
  for (int w = 0; w < workers_now_; ++w) workers_.emplace_back([this] { worker_main(); });
}

void DataLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (copy_stream_) copy_stream_->synchronize();
  held_.reset();
  if (active_) {  // the epoch's measurements, now that no worker adds to them
    stats_.workers = workers_now_;
    stats_.filled = filled_;
    stats_.fill_seconds = fill_seconds_;
    stats_.epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start_).count();
  }
  active_ = false;
}

void DataLoader::worker_main() {
  SampleScratch scratch;
  const auto ring = static_cast<std::int64_t>(slots_.size());
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return stopping_ || next_claim_ >= end_batch_ || next_claim_ < released_ + ring; });
    if (stopping_ || next_claim_ >= end_batch_) return;
    const std::int64_t b = next_claim_++;
    Slot& slot = *slots_[static_cast<std::size_t>(b % ring)];
    lock.unlock();
    const auto t0 = std::chrono::steady_clock::now();
    fill(slot, b, scratch);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lock.lock();
    fill_seconds_ += seconds;
    ++filled_;
    slot.ready_batch = b;
    cv_.notify_all();
  }
}

void DataLoader::fill(Slot& s, std::int64_t b, SampleScratch& scratch) {
  const std::int64_t S = opt_.image_size, C = opt_.normalize.channels, K = classes();
  const auto n = static_cast<std::int64_t>(order_.size());
  const std::int64_t lo = std::min(n, origin_ + b * global_batch()), hi = std::min(n, lo + global_batch());
  const auto [begin, end] = shard_range(lo, hi, opt_.rank, opt_.world_size);
  s.first_position = begin;
  s.count = 0;
  s.indices.clear();
  s.names.clear();
  s.skipped.clear();
  s.error = nullptr;
  float* images = s.images.f32();
  float* labels = s.labels.f32();
  float* boxes = s.boxes.f32();
  float* mask = s.box_mask.f32();
  float* label_mask = masked_ ? s.label_mask.f32() : nullptr;
  for (std::int64_t pos = begin; pos < end; ++pos) {
    if (stopping_) return;
    const std::int64_t idx = order_[static_cast<std::size_t>(pos)];
    const ImageRecord& rec = dataset_.record(idx);
    const std::int64_t k = s.count;
    const SampleSlot out{images + k * C * S * S, labels + k * K, boxes + k * K * 4, mask + k * K,
                         label_mask ? label_mask + k * K : nullptr};
    try {
      if (cache_) {
        const std::uint8_t* p = cache_->pixels(idx);
        CXR_CHECK(p != nullptr, "image ", rec.name,
                  cache_->status(idx) == CacheStatus::Missing ? " was not found when the cache was built"
                                                              : " could not be decoded when the cache was built");
        prepare_sample(p, cache_->size(), cache_->size(), cache_->source_width(idx), cache_->source_height(idx), rec,
                       idx, epoch_, sample_opt_, scratch, out);
      } else {
        const std::string& path = dataset_.image_path(idx);
        CXR_CHECK(!path.empty(), "image ", rec.name, " not found under ", dataset_.root);
        const GrayImage img = decode_gray8_file(path);
        prepare_sample(img.pixels.data(), img.width, img.height, img.width, img.height, rec, idx, epoch_,
                       sample_opt_, scratch, out);
      }
      s.indices.push_back(idx);
      s.names.push_back(rec.name);
      ++s.count;
    } catch (const std::exception& e) {
      if (opt_.strict) {
        s.error = std::make_exception_ptr(Error(std::string("bad input (strict mode): ") + e.what()));
        return;
      }
      s.skipped.emplace_back(rec.name, e.what());
    }
  }
}

void DataLoader::release_current() {
  if (!held_) return;
  const std::int64_t k = *held_;
  if (!device_sets_.empty()) {
    DeviceSet& set = *device_sets_[static_cast<std::size_t>(k % 2)];
    set.consumed.record(Stream::compute());  // the consumer has issued all its work on batch k
    set.copied.synchronize();                // the host slot may be overwritten
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = k + 1;
  }
  cv_.notify_all();
  held_.reset();
}

const Batch* DataLoader::next() {
  if (!active_) return nullptr;
  release_current();
  const auto ring = static_cast<std::int64_t>(slots_.size());
  for (;;) {
    if (next_return_ >= end_batch_) {
      stop();
      report_.flush_suppressed();
      CXR_CHECK(stats_.images > 0 || first_batch_ >= end_batch_, "epoch ", epoch_, ": none of the ", order_.size(),
                " images could be read (first failure: ", first_failure_, ")");
      return nullptr;
    }
    const std::int64_t k = next_return_++;
    Slot& s = *slots_[static_cast<std::size_t>(k % ring)];
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const auto t0 = std::chrono::steady_clock::now();
      cv_.wait(lock, [&] { return s.ready_batch == k; });
      stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (s.error) {
      const auto error = s.error;
      stop();
      std::rethrow_exception(error);
    }
    for (const auto& [name, reason] : s.skipped) {
      report_.warn("image " + name + " skipped: " + reason);
      if (first_failure_.empty()) first_failure_ = reason;
      ++stats_.skipped;
      if (stats_.skipped_names.size() < 100) stats_.skipped_names.push_back(name);
    }
    if (s.count == 0) {  // every image of this batch was bad
      {
        std::lock_guard<std::mutex> lock(mutex_);
        released_ = k + 1;
      }
      cv_.notify_all();
      continue;
    }
    held_ = k;
    const std::int64_t n = s.count;
    batch_.number = k;
    batch_.first_position = s.first_position;
    batch_.box_count = 0;
    const std::int64_t K = classes();
    for (std::int64_t i = 0; i < n * K; ++i) batch_.box_count += s.box_mask.f32()[i];
    batch_.label_count = static_cast<double>(n * K);
    if (masked_) {
      batch_.label_count = 0;
      for (std::int64_t i = 0; i < n * K; ++i) batch_.label_count += s.label_mask.f32()[i];
    }
    batch_.indices = s.indices;
    batch_.names = s.names;
    if (device_sets_.empty()) {
      batch_.images = s.images.narrow(0, 0, n);
      batch_.labels = s.labels.narrow(0, 0, n);
      batch_.boxes = s.boxes.narrow(0, 0, n);
      batch_.box_mask = s.box_mask.narrow(0, 0, n);
      if (masked_) batch_.label_mask = s.label_mask.narrow(0, 0, n);
    } else {
      DeviceSet& set = *device_sets_[static_cast<std::size_t>(k % 2)];
      if (set.used) set.consumed.block(*copy_stream_);  // batch k - 2 no longer read
      batch_.images = set.images.narrow(0, 0, n);
      batch_.labels = set.labels.narrow(0, 0, n);
      batch_.boxes = set.boxes.narrow(0, 0, n);
      batch_.box_mask = set.box_mask.narrow(0, 0, n);
      if (masked_) batch_.label_mask = set.label_mask.narrow(0, 0, n);
      batch_.images.copy_async_(s.images.narrow(0, 0, n), *copy_stream_);
      batch_.labels.copy_async_(s.labels.narrow(0, 0, n), *copy_stream_);
      batch_.boxes.copy_async_(s.boxes.narrow(0, 0, n), *copy_stream_);
      batch_.box_mask.copy_async_(s.box_mask.narrow(0, 0, n), *copy_stream_);
      if (masked_) batch_.label_mask.copy_async_(s.label_mask.narrow(0, 0, n), *copy_stream_);
      set.copied.record(*copy_stream_);
      set.copied.block(Stream::compute());
      set.used = true;
    }
    ++stats_.batches;
    stats_.images += n;
    return &batch_;
  }
}

std::string DataLoader::summary() const {
  std::string s = detail::concat("epoch ", stats_.epoch, ": ", stats_.images, " images in ", stats_.batches,
                                 " batches, ", stats_.skipped, " skipped");
  if (stats_.skipped > 0) {
    s += " (unreadable or missing:";
    for (std::size_t i = 0; i < stats_.skipped_names.size() && i < 5; ++i) s += " " + stats_.skipped_names[i];
    if (stats_.skipped > 5) s += " ...";
    s += ")";
  }
  s += detail::concat(", waited ", static_cast<int>(stats_.wait_seconds * 1000), " ms for data, ", workers_now_,
                      workers_now_ == 1 ? " worker" : " workers", opt_.workers == kAutoWorkers ? " (auto)" : "");
  return s;
}

}  // namespace cxr::data
