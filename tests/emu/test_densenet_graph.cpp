// densenet121 trained through train_model on the emulated device: eager steps against the same
// steps captured as a CUDA graph and replayed (--cuda-graph). The dense blocks allocate their
// channel-major buffers and, in memory-efficient mode, recompute each bottleneck in backward:
// all of it must replay from the graph's memory pool and give the eager run's numbers.
#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/data/data_test_util.h"
#include "tests/train/train_test_util.h"
#include "train/trainer.h"

using namespace cxr;

TEST_CASE("train_model --cuda-graph on cuda-emu (densenet121, memory-efficient): bit-identical weights and losses "
          "to eager steps" * doctest::test_suite("cuda-emu-slow")) {
  test::TempDir dir("densenet_graph");
  std::ostringstream sink;
  auto run = [&](const std::string& name, bool graph) {
    TrainOptions o;
    o.data_dir = test::small_synth_dir();
    o.out_dir = dir / name;
    o.model = "densenet121";
    o.image_size = 32;  // the smallest size a multiple of 32 that densenet121 takes (29 px and up)
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
    return train_model(o, sink);
  };
  run("eager", false);
  run("graph", true);
  CHECK(test::read_all(dir / "graph/log.txt").find("--cuda-graph: captured the training step at step 3") !=
        std::string::npos);
  CHECK(test::differing_tensors(dir / "eager/last.safetensors", dir / "graph/last.safetensors").empty());
  const std::vector<std::string> losses = test::logged_losses(dir / "graph");
  CHECK(losses.size() == 3);
  CHECK(test::logged_losses(dir / "eager") == losses);
}
