// Dropout and StochasticDepth with their mask counters on the CUDA device (layers/dropout.h,
// kernels/dropout.h DeviceMaskCounter), checked on the emulated device:
//  - a forward + backward captured into a CUDA graph and replayed draws a fresh mask on every
//    replay, the same ones (bit for bit) as the eager steps and the CPU from the same
//    (seed, offset), and leaves the same counter;
//  - set_rng / offset() on the device; a module that runs on the CPU, the device and the CPU
//    again keeps its mask stream;
//  - train_model --cuda-graph on efficientnet_b0 (stochastic depth and dropout) ends
//    bit-identical to eager training (suite cuda-emu-slow).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/dropout.h"
#include "layers/dropout.h"
#include "tensor/stream.h"
#include "tests/data/data_test_util.h"
#include "tests/train/train_test_util.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/safetensors.h"
#include "train/trainer.h"

using namespace cxr;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.cpu(), hb = b.cpu();
  return ha.shape() == hb.shape() && ha.nbytes() == hb.nbytes() &&
         std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

// A Dropout or a StochasticDepth behind one interface, so each check runs on both.
struct MaskLayer {
  std::unique_ptr<Module> module;
  std::function<void(std::uint64_t, std::uint64_t)> set_rng;
  std::function<std::uint64_t()> offset;
  std::function<void(Device)> place_counter;
};
template <typename M>
MaskLayer make_mask_layer(float p) {
  auto m = std::make_unique<M>(p);
  M* raw = m.get();
  return {std::move(m), [raw](std::uint64_t s, std::uint64_t o) { raw->set_rng(s, o); },
          [raw] { return raw->offset(); }, [raw](Device d) { raw->place_counter(d); }};
}
MaskLayer make_layer(bool drop_path, float p) {
  return drop_path ? make_mask_layer<StochasticDepth>(p) : make_mask_layer<Dropout>(p);
}
// Counters one training forward of `shape` uses.
std::uint64_t counters_per_forward(bool drop_path, const Shape& shape) {
  std::uint64_t n = 1;
  for (auto s : shape) n *= static_cast<std::uint64_t>(s);
  return drop_path ? static_cast<std::uint64_t>(shape[0]) : n;
}

struct StepOut {
  Tensor y, dx;
};

}  // namespace

TEST_SUITE("cuda-emu") {

TEST_CASE("Dropout / StochasticDepth in a CUDA graph: every replay draws the next mask, the same as eager steps and "
          "the CPU, and advances the device counter") {
  std::mt19937_64 rng(11);
  for (const bool drop_path : {false, true}) {
    CAPTURE(drop_path);
    const Shape shape = drop_path ? Shape{16, 3, 5} : Shape{7, 9, 5};
    const std::uint64_t seed = 0x1234'5678'9abcull, start = (1ull << 33) + 5;  // an offset past 32 bits
    const Tensor x = Tensor::uniform(shape, rng, -1.f, 1.f), dy = Tensor::uniform(shape, rng, -1.f, 1.f);
    const int steps = 3;

    // The references: eager steps on the CPU and on the device.
    MaskLayer cpu = make_layer(drop_path, 0.4f), eager = make_layer(drop_path, 0.4f);
    cpu.set_rng(seed, start);
    eager.set_rng(seed, start);
    std::vector<StepOut> ref_cpu, ref_dev;
    for (int k = 0; k < steps; ++k) {
      Tensor y = cpu.module->forward(x);
      ref_cpu.push_back({y, cpu.module->backward(dy)});
      y = eager.module->forward(x.to(Device::CUDA));
      ref_dev.push_back({y.cpu(), eager.module->backward(dy.to(Device::CUDA)).cpu()});
    }

    // The captured step, replayed: its inputs in static device buffers.
    MaskLayer g = make_layer(drop_path, 0.4f);
    g.set_rng(seed, start);
    g.place_counter(Device::CUDA);  // before the capture, which must not upload it
    const Tensor xs = x.to(Device::CUDA), dys = dy.to(Device::CUDA);
    Graph graph;
    Tensor y, dx;
    graph.begin_capture(Stream::compute());
    y = g.module->forward(xs);
    dx = g.module->backward(dys);
    graph.end_capture();
    REQUIRE(graph.ready());
    CHECK(g.offset() == start);  // capturing ran nothing
    for (int k = 0; k < steps; ++k) {
      CAPTURE(k);
      graph.replay();
      CHECK(same_bits(y, ref_dev[static_cast<std::size_t>(k)].y));
      CHECK(same_bits(dx, ref_dev[static_cast<std::size_t>(k)].dx));
      CHECK(same_bits(y, ref_cpu[static_cast<std::size_t>(k)].y));
      CHECK(same_bits(dx, ref_cpu[static_cast<std::size_t>(k)].dx));
      CHECK(g.offset() == start + static_cast<std::uint64_t>(k + 1) * counters_per_forward(drop_path, shape));
    }
    CHECK(!same_bits(ref_cpu[0].y, ref_cpu[1].y));  // the steps' masks differ (or the check above proves nothing)
    CHECK(!same_bits(ref_cpu[1].y, ref_cpu[2].y));
    CHECK(g.offset() == eager.offset());
    CHECK(g.offset() == cpu.offset());

    // set_rng on the device rewinds the stream the graph reads: the first mask again.
    g.set_rng(seed, start);
    graph.replay();
    CHECK(same_bits(y, ref_cpu[0].y));
    CHECK(same_bits(dx, ref_cpu[0].dx));
  }
}

TEST_CASE("Dropout / StochasticDepth: set_rng and offset() on the device; eval does not advance it; a module run on "
          "the CPU, the device and the CPU again keeps its mask stream") {
  std::mt19937_64 rng(12);
  for (const bool drop_path : {false, true}) {
    CAPTURE(drop_path);
    const Shape shape = {6, 4, 3};
    const std::uint64_t per = counters_per_forward(drop_path, shape);
    const Tensor x = Tensor::uniform(shape, rng, -1.f, 1.f);

    MaskLayer d = make_layer(drop_path, 0.5f);
    d.place_counter(Device::CUDA);
    for (const std::uint64_t o : {0ull, 77ull, (1ull << 40) + 3, ~0ull - 1000}) {
      d.set_rng(9, o);
      CHECK(d.offset() == o);  // written to and read back from the device
    }
    d.set_rng(9, 100);
    d.module->forward(x.to(Device::CUDA));
    CHECK(d.offset() == 100 + per);
    d.module->eval();
    CHECK(same_bits(d.module->forward(x.to(Device::CUDA)), x));
    CHECK(d.offset() == 100 + per);
    d.module->train();

    // CPU -> CUDA -> CPU (Module::to and back), against a module that stays on the CPU.
    MaskLayer moved = make_layer(drop_path, 0.5f), stay = make_layer(drop_path, 0.5f);
    moved.set_rng(21, 5);
    stay.set_rng(21, 5);
    for (int k = 0; k < 4; ++k) {
      CAPTURE(k);
      const Device dev = k == 1 || k == 2 ? Device::CUDA : Device::CPU;
      moved.module->to(dev);
      const Tensor ref = stay.module->forward(x);
      CHECK(same_bits(moved.module->forward(x.to(dev)), ref));
      CHECK(moved.offset() == stay.offset());
      CHECK(moved.offset() == 5 + static_cast<std::uint64_t>(k + 1) * per);
    }
    CHECK(!same_bits(stay.module->forward(x), stay.module->forward(x)));  // fresh masks per step
  }
}

TEST_CASE("dropout / drop_path with a device-side offset: the kernels read the counter when they run") {
  std::mt19937_64 rng(13);
  const Tensor x = Tensor::uniform({5, 33}, rng, -1.f, 1.f);
  for (const bool per_sample : {false, true}) {
    CAPTURE(per_sample);
    DeviceMaskCounter c(40);
    DropoutParams by_value{0.3f, 8, 40, true};
    DropoutParams on_device{0.3f, 8, 0, true};
    on_device.device_offset = c.used();  // used = 40 before any advance
    auto run = [&](const Tensor& t, const DropoutParams& d) { return per_sample ? drop_path(t, d) : dropout(t, d); };
    const Tensor xd = x.to(Device::CUDA);
    CHECK(same_bits(run(xd, on_device), run(x, by_value)));
    on_device.device_offset = c.advance(1000);  // used = 40, next = 1040
    CHECK(same_bits(run(xd, on_device), run(x, by_value)));
    c.advance(7);  // used = 1040
    by_value.offset = 1040;
    CHECK(same_bits(run(xd, on_device), run(x, by_value)));
    CHECK(c.next() == 1047);
    c.set(3);
    by_value.offset = 3;
    CHECK(same_bits(run(xd, on_device), run(x, by_value)));  // set() writes used too
    CHECK_THROWS_WITH(run(x, on_device), doctest::Contains("needs x on the CUDA device"));
  }
}

}  // TEST_SUITE

TEST_CASE("train_model --cuda-graph on cuda-emu with stochastic depth and dropout (efficientnet_b0): bit-identical "
          "weights, mask counters and losses to eager steps" * doctest::test_suite("cuda-emu-slow")) {
  test::TempDir dir("graph_dropout");
  std::ostringstream sink;
  auto run = [&](const std::string& name, bool graph) {
    TrainOptions o;
    o.data_dir = test::small_synth_dir();
    o.out_dir = dir / name;
    o.model = "efficientnet_b0";
    o.image_size = 16;  // the smallest the trainer accepts: the emulated device runs every kernel on the CPU
    o.epochs = 1;
    o.batch_size = 2;
    o.workers = 1;
    o.seed = 5;
    o.lr = 0.001;
    o.warmup_steps = 1;
    o.limit = 6;  // 3 steps: 2 eager warm-up steps, then the capture, replayed at once
    o.quiet = true;
    o.device = Device::CUDA;
    o.cuda_graph = graph;
    return train_model(o, sink);  // used to throw: "has dropout or stochastic depth"
  };
  run("eager", false);
  run("graph", true);
  CHECK(test::read_all(dir / "graph/log.txt").find("--cuda-graph: captured the training step at step 3") !=
        std::string::npos);
  CHECK(test::read_all(dir / "eager/log.txt").find("captured") == std::string::npos);
  CHECK(test::differing_tensors(dir / "eager/last.safetensors", dir / "graph/last.safetensors").empty());
  const std::vector<std::string> losses = test::logged_losses(dir / "graph");
  CHECK(losses.size() == 3);
  CHECK(test::logged_losses(dir / "eager") == losses);
  const Checkpoint eager = load_checkpoint(dir / "eager/last.safetensors");
  const Checkpoint graph = load_checkpoint(dir / "graph/last.safetensors");
  const std::string offsets = graph.meta.extra.at("resume.mask_offsets");
  CHECK(offsets == eager.meta.extra.at("resume.mask_offsets"));
  // A drop-path counter advanced by batch_size per training step, the replays included.
  const auto counters = nlohmann::json::parse(offsets).get<std::vector<std::uint64_t>>();
  CHECK(std::count(counters.begin(), counters.end(), static_cast<std::uint64_t>(losses.size()) * 2) > 0);
}
