// Issue 8, point 4 (phase 1): the training step on the CUDA device without host
// synchronisation, checked on the emulated device.
//  - the device-scalar optimiser steps (DeviceStepScalars) against adamw_step / sgd_step with
//    the host's scalars: bit-identical, per parameter counts, decay flags, clipping, skips;
//  - the step status, the guarded copies and the non-finite marks;
//  - train_model on cuda-emu: zero host synchronisations while a step is enqueued (counted by
//    the emulator's runtime, cuda_emu/counters.h), one metrics.jsonl line per step in order,
//    and the non-finite stop / skip policies with the device-side guard.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_emu/counters.h"
#include "data/loader.h"
#include "kernels/optimizer_step.h"
#include "kernels/reduce.h"
#include "tests/data/data_test_util.h"
#include "tests/train/train_test_util.h"
#include "checkpoint/checkpoint.h"
#include "checkpoint/safetensors.h"
#include "train/trainer.h"

using namespace cxr;

namespace {

Tensor random_tensor(const Shape& shape, std::mt19937_64& rng, float scale = 1.f) {
  return Tensor::randn(shape, rng, 0.f, scale);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.cpu(), hb = b.cpu();
  return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw_data(), hb.raw_data(), ha.nbytes()) == 0;
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> r;
  for (const Tensor& t : ts) r.push_back(t.clone());
  return r;
}

std::vector<Tensor> pick(const std::vector<Tensor>& ts, const std::vector<int>& idx) {
  std::vector<Tensor> r;
  for (int i : idx) r.push_back(ts[static_cast<std::size_t>(i)]);
  return r;
}

TrainOptions small_cuda_run(const std::string& out) {
  TrainOptions o;
  o.data_dir = test::small_synth_dir();
  o.out_dir = out;
  o.model = "resnet18";
  o.image_size = 16;  // small: the emulated device runs every kernel on the CPU
  o.epochs = 1;
  o.batch_size = 4;
  o.workers = 1;
  o.seed = 3;
  o.lr = 0.001;
  o.warmup_steps = 1;
  o.limit = 12;  // 3 steps per epoch
  o.quiet = true;
  o.device = Device::CUDA;
  return o;
}

}  // namespace

TEST_SUITE("cuda-emu") {

TEST_CASE("device-scalar AdamW and SGD steps are bit-identical to the host-scalar steps (counts, decay, clip, "
          "skips)") {
  std::mt19937_64 rng(11);
  const std::vector<Shape> shapes = {{37}, {16, 9}, {5}, {64, 3, 3, 3}, {1}};
  const int n = static_cast<int>(shapes.size());
  for (const bool adamw : {true, false}) {
    CAPTURE(adamw);
    std::vector<Tensor> p, m, v, p_ref, m_ref, v_ref;
    for (const Shape& s : shapes) {
      p.push_back(random_tensor(s, rng).to(Device::CUDA));
      m.push_back(Tensor::zeros(s, DType::F32, Device::CUDA));
      v.push_back(Tensor::zeros(s, DType::F32, Device::CUDA));
    }
    p_ref = clones(p);
    m_ref = clones(m);
    v_ref = clones(v);
    DeviceStepScalars::Config c;
    c.adamw = adamw;
    c.adam.weight_decay = 0.05f;
    c.sgd.momentum = 0.9f;
    c.sgd.weight_decay = 0.05f;
    for (int s = 0; s < 8; ++s) c.lr_per_step.push_back(0.01 * (1.0 + 0.37 * s));
    c.max_count = 12;  // parameter 2 reaches 11
    DeviceStepScalars dev(c, n, Device::CUDA);
    // Parameter 2 starts 3 steps ahead (as after frozen epochs); parameter 4 is frozen at first.
    std::vector<std::int64_t> counts = {0, 0, 3, 0, 0};
    dev.set_state(0, counts);
    const std::vector<bool> decays = {true, false, true, true, false};
    Tensor status = make_step_status(Device::CUDA);
    for (int step = 0; step < 8; ++step) {
      CAPTURE(step);
      const bool skip = step == 3;  // a non-finite step: nothing changes, counts stay
      std::vector<int> active = step < 2 ? std::vector<int>{0, 1, 2, 3} : std::vector<int>{0, 1, 2, 3, 4};
      std::vector<bool> dec;
      for (int i : active) dec.push_back(decays[static_cast<std::size_t>(i)]);
      dev.set_active(active, dec);
      std::vector<Tensor> g;
      for (const Shape& s : shapes) g.push_back(random_tensor(s, rng, 0.5f).to(Device::CUDA));
      const bool clip = step % 2 == 1;
      const Tensor scale = clip ? Tensor::full({1}, 0.625f, Device::CUDA) : Tensor();
      const Tensor loss = Tensor::full({1}, skip ? std::numeric_limits<float>::infinity() : 1.5f, Device::CUDA);
      step_status_(status, loss, Tensor::full({1}, 2.f, Device::CUDA));
      CHECK(status.cpu().f32()[2] == (skip ? 0.f : 1.f));
      auto pa = pick(p, active), ga = pick(g, active), ma = pick(m, active), va = pick(v, active);
      if (adamw)
        dev.adamw_step(pa, ga, ma, va, scale, status);
      else
        dev.sgd_step(pa, ga, ma, scale, status);
      if (skip) continue;
      // The reference: host scalars, one call per (decay, count) group, as the trainer did.
      for (int i : active) {
        ++counts[static_cast<std::size_t>(i)];
        std::vector<Tensor> pr = {p_ref[static_cast<std::size_t>(i)]}, gr = {g[static_cast<std::size_t>(i)]},
                            mr = {m_ref[static_cast<std::size_t>(i)]}, vr = {v_ref[static_cast<std::size_t>(i)]};
        const float wd = decays[static_cast<std::size_t>(i)] ? 0.05f : 0.f;
        const float lr = static_cast<float>(c.lr_per_step[static_cast<std::size_t>(step)]);
        if (adamw) {
          AdamWOptions o;
          o.lr = lr;
          o.weight_decay = wd;
          adamw_step(pr, gr, mr, vr, counts[static_cast<std::size_t>(i)], o, scale);
        } else {
          SgdOptions o;
          o.lr = lr;
          o.momentum = 0.9f;
          o.weight_decay = wd;
          sgd_step(pr, gr, mr, counts[static_cast<std::size_t>(i)], o, scale);
        }
      }
      for (int i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK(same_bits(p[static_cast<std::size_t>(i)], p_ref[static_cast<std::size_t>(i)]));
        CHECK(same_bits(m[static_cast<std::size_t>(i)], m_ref[static_cast<std::size_t>(i)]));
        if (adamw) CHECK(same_bits(v[static_cast<std::size_t>(i)], v_ref[static_cast<std::size_t>(i)]));
      }
    }
    CHECK(dev.counts() == counts);
    CHECK(dev.global_step() == 8);  // the schedule advances on skipped steps too
  }
}

TEST_CASE("step status: the flag, the latch, guarded restores and the non-finite marks of a step") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor status = make_step_status(Device::CUDA);
  const Tensor one = Tensor::full({1}, 1.f, Device::CUDA), bad = Tensor::full({1}, nan, Device::CUDA),
               big = Tensor::full({1}, std::numeric_limits<float>::infinity(), Device::CUDA);
  step_status_(status, one, one);
  CHECK(status.cpu().f32()[2] == 1.f);
  step_status_(status, bad, one);
  CHECK(status.cpu().f32()[2] == 0.f);
  step_status_(status, one, big);
  CHECK(status.cpu().f32()[2] == 0.f);
  step_status_(status, one, Tensor());  // no norm (no trainable parameter): the loss decides
  CHECK(status.cpu().f32()[2] == 1.f);
  // The latch: after a bad step, later steps are not applied either.
  step_status_(status, bad, one, true);
  CHECK(status.cpu().f32()[2] == 0.f);
  step_status_(status, one, one, true);
  CHECK(status.cpu().f32()[2] == 0.f);
  CHECK(status.cpu().f32()[0] == 1.f);  // the value of the step is still reported
  // Guarded restore: only when the flag is 0. An I32 buffer travels bit for bit.
  Tensor live_f = Tensor::full({1000}, 2.f, Device::CUDA), saved_f = Tensor::full({1000}, 3.f, Device::CUDA);
  Tensor live_i = Tensor::zeros({}, DType::I32).to(Device::CUDA), saved_i_host = Tensor::zeros({}, DType::I32);
  saved_i_host.data<std::int32_t>()[0] = 123456789;
  Tensor saved_i = saved_i_host.to(Device::CUDA);
  std::vector<Tensor> live = {live_f, live_i}, saved = {saved_f, saved_i};
  Tensor fresh = make_step_status(Device::CUDA);
  step_status_(fresh, one, one);
  restore_if_skipped_(live, saved, fresh);
  CHECK(live_f.cpu().f32()[999] == 2.f);
  step_status_(fresh, bad, one);
  restore_if_skipped_(live, saved, fresh);
  CHECK(live_f.cpu().f32()[999] == 3.f);
  CHECK(live_i.cpu().data<std::int32_t>()[0] == 123456789);
  copy_tensors_(saved, std::vector<Tensor>{Tensor::full({1000}, 4.f, Device::CUDA), saved_i});
  CHECK(saved_f.cpu().f32()[0] == 4.f);

  // Marks: step 1 (global step 0) is bad in tensor 1; step 2 bad in tensor 0; step 3 good.
  DeviceStepScalars::Config c;
  c.lr_per_step = {0.1, 0.1, 0.1};
  c.max_count = 3;
  DeviceStepScalars dev(c, 2, Device::CUDA);
  dev.set_active({0, 1}, {true, true});
  Tensor g0 = Tensor::full({40000}, 1.f), g1 = Tensor::full({7}, 1.f);
  g1.f32()[6] = nan;
  std::vector<Tensor> p = {Tensor::zeros({40000}, DType::F32, Device::CUDA), Tensor::zeros({7}, DType::F32, Device::CUDA)};
  std::vector<Tensor> m = clones(p), v = clones(p);
  auto run = [&](const Tensor& a, const Tensor& b, bool finite) {
    std::vector<Tensor> g = {a.to(Device::CUDA), b.to(Device::CUDA)};
    step_status_(status = make_step_status(Device::CUDA), finite ? one : bad, one);
    dev.mark_nonfinite(g, status);
    dev.adamw_step(p, g, m, v, Tensor(), status);
  };
  run(Tensor::full({40000}, 1.f), g1, false);
  Tensor g0_bad = g0.clone();
  g0_bad.f32()[39999] = std::numeric_limits<float>::infinity();  // in the last chunk of tensor 0
  run(g0_bad, Tensor::full({7}, 1.f), false);
  CHECK(dev.nonfinite_of_step(1) == std::vector<int>{1});
  CHECK(dev.nonfinite_of_step(2) == std::vector<int>{0});
  run(g0, Tensor::full({7}, 1.f), true);
  CHECK(dev.nonfinite_of_step(3).empty());
  CHECK(dev.nonfinite_of_step(1) == std::vector<int>{1});  // step 3 used the other slot
  CHECK(dev.counts() == std::vector<std::int64_t>{1, 1});
  CHECK(p[1].cpu().f32()[0] != 0.f);  // step 3 was applied
}

TEST_CASE("train_model on cuda-emu: no host synchronisation while a step is enqueued (resnet18; plain AdamW, SGD "
          "with --grad-clip and --skip-nonfinite); metrics.jsonl has every step in order" *
          doctest::test_suite("cuda-emu-slow")) {
  struct Variant {
    const char* name;
    double clip;
    bool skip;
    const char* optimizer;
  };
  // Two runs cover the paths (the emulator makes each run cost half a minute): AdamW without
  // clipping over two epochs, and SGD with clipping and the device-side skip.
  for (const Variant& var : {Variant{"plain", 0.0, false, "adamw"}, Variant{"sgd+clip+skip", 0.5, true, "sgd"}}) {
    const std::string name = var.name;
    CAPTURE(name);
    test::TempDir dir("async_sync_count");
    TrainOptions o = small_cuda_run(dir / "run");
    const bool two_epochs = name == "plain";  // the first step of epoch 2 too (the others: time)
    o.epochs = two_epochs ? 2 : 1;
    o.grad_clip = var.clip;
    o.skip_nonfinite = var.skip;
    o.optimizer = var.optimizer;
    std::uint64_t at_forward = 0;
    std::vector<std::int64_t> steps_seen;
    std::vector<std::uint64_t> syncs;
    o.hooks.before_forward = [&](std::int64_t, const data::Batch&) { at_forward = cuda_emu::host_sync_count(); };
    o.hooks.after_enqueue = [&](std::int64_t step) {
      steps_seen.push_back(step);
      syncs.push_back(cuda_emu::host_sync_count() - at_forward);
    };
    std::ostringstream sink;
    const TrainResult r = train_model(o, sink);
    REQUIRE(r.epochs.size() == static_cast<std::size_t>(o.epochs));
    REQUIRE(steps_seen.size() == static_cast<std::size_t>(3 * o.epochs));
    MESSAGE(name << ": host synchronisations while enqueuing step 1: " << syncs[0]);
    for (std::size_t i = 1; i < syncs.size(); ++i) {
      CAPTURE(steps_seen[i]);
      CHECK(syncs[i] == 0);
    }
    // One line per step, in order, with finite losses.
    std::ifstream f(dir / "run/metrics.jsonl");
    std::int64_t expect = 1;
    for (std::string line; std::getline(f, line); ++expect) {
      CHECK(line.find("\"step\":" + std::to_string(expect) + ",") != std::string::npos);
      CHECK(line.find("\"loss\":null") == std::string::npos);
    }
    CHECK(expect == 3 * o.epochs + 1);
    CHECK(std::isfinite(r.epochs.back().train_loss));
  }
}

TEST_CASE("train_model on cuda-emu: a NaN gradient stops one step later naming the step, the parameter and the "
          "images; no update from the bad step or the one queued after it" *
          doctest::test_suite("cuda-emu-slow")) {
  test::TempDir dir("async_nan_stop");
  TrainOptions o = small_cuda_run(dir / "run");
  const std::int64_t bad_step = 2;
  CxrModel* seen = nullptr;
  std::vector<Tensor> before;  // the parameters before the bad step's update
  o.hooks.after_backward = [&](std::int64_t step, CxrModel& model) {
    if (step != bad_step) return;
    seen = &model;
    for (auto& [name, p] : model.named_parameters()) {
      before.push_back(p->value.clone());
      if (name == "layer3.1.conv2.weight") p->grad.f32()[11] = std::numeric_limits<float>::quiet_NaN();
    }
  };
  int changed_after = -1;
  o.hooks.after_enqueue = [&](std::int64_t step) {
    if (step != bad_step + 1 || !seen) return;  // step 3 is on the device, step 2's result not read yet
    changed_after = 0;
    std::size_t i = 0;
    for (auto& [name, p] : seen->named_parameters()) changed_after += !same_bits(p->value, before[i++]);
  };
  std::string message;
  try {
    std::ostringstream sink;
    train_model(o, sink);
  } catch (const Error& e) {
    message = e.what();
  }
  MESSAGE(message);
  CHECK(message.find("non-finite values at step 2 (epoch 1, batch 2)") != std::string::npos);
  CHECK(message.find("first in the gradient of layer3.1.conv2.weight") != std::string::npos);
  CHECK(message.find("images of the batch: ") != std::string::npos);
  CHECK(message.find("Training stopped at step 3") != std::string::npos);
  CHECK(message.find("without an update from step 2 or after") != std::string::npos);
  CHECK(changed_after == 0);  // neither step 2 nor step 3 changed a weight
  CHECK(test::read_all(dir / "run/log.txt").find("non-finite values at step 2") != std::string::npos);
}

TEST_CASE("train_model on cuda-emu: --skip-nonfinite skips a NaN-input step on the device, restores batch-norm "
          "statistics, names the parameter, and keeps the optimiser counts right" *
          doctest::test_suite("cuda-emu-slow")) {
  test::TempDir dir("async_nan_skip");
  TrainOptions o = small_cuda_run(dir / "run");
  o.skip_nonfinite = true;
  o.hooks.before_forward = [](std::int64_t step, const data::Batch& b) {
    if (step != 3) return;
    Tensor images = b.images;
    images.f32()[5] = std::numeric_limits<float>::quiet_NaN();
  };
  std::ostringstream sink;
  const TrainResult r = train_model(o, sink);
  CHECK(r.skipped_steps == 1);
  const std::string log = test::read_all(dir / "run/log.txt");
  CHECK(log.find("skipped non-finite values at step 3 (epoch 1, batch 3)") != std::string::npos);
  CHECK(log.find("first in the gradient of conv1.weight") != std::string::npos);
  CHECK(log.find("1 steps skipped for non-finite values") != std::string::npos);
  CHECK(test::checkpoint_all_finite(dir / "run/last.safetensors"));  // weights, optimiser state, batch-norm statistics
  const Checkpoint ck = load_checkpoint(dir / "run/last.safetensors");
  CHECK(ck.meta.step == 3);
  // 3 steps, one skipped: every parameter was updated twice.
  CHECK(ck.meta.extra.at("resume.param_steps").find("3") == std::string::npos);
  CHECK(ck.meta.extra.at("resume.param_steps").find("2") != std::string::npos);
}

}  // TEST_SUITE

TEST_SUITE("cuda-emu") {

TEST_CASE("train_model --cuda-graph on cuda-emu: bit-identical weights, optimiser state, batch-norm buffers and "
          "losses to eager steps (AdamW with --grad-clip over two epochs, the first with the backbone frozen: a "
          "recapture; a resumed run)" *
          doctest::test_suite("cuda-emu-slow")) {
  test::TempDir dir("async_graph");
  std::ostringstream sink;
  auto run = [&](const std::string& name, const std::string& optimizer, double clip, bool graph, int epochs,
                 int stop_after, bool resume) {
    TrainOptions o = small_cuda_run(dir / name);
    o.limit = 16;  // 4 steps per epoch: 2 eager warm-up steps, the capture, a replay
    o.optimizer = optimizer;
    o.grad_clip = clip;
    o.cuda_graph = graph;
    o.epochs = epochs;
    o.stop_after_epochs = stop_after;
    o.resume = resume;
    o.freeze_backbone_epochs = optimizer == "adamw" ? 1 : 0;  // the heads run 4 steps ahead in epoch 2
    return train_model(o, sink);
  };
  run("adamw_eager", "adamw", 1.0, false, 2, 0, false);
  run("adamw_graph", "adamw", 1.0, true, 2, 0, false);
  const std::string graph_log = test::read_all(dir / "adamw_graph/log.txt");
  CHECK(graph_log.find("--cuda-graph: captured the training step at step 3") != std::string::npos);
  CHECK(graph_log.find("--cuda-graph: captured the training step at step 7") != std::string::npos);  // unfrozen
  CHECK(test::read_all(dir / "adamw_eager/log.txt").find("captured") == std::string::npos);
  CHECK(test::differing_tensors(dir / "adamw_eager/last.safetensors", dir / "adamw_graph/last.safetensors").empty());
  CHECK(test::logged_losses(dir / "adamw_eager") == test::logged_losses(dir / "adamw_graph"));
  CHECK(test::logged_losses(dir / "adamw_graph").size() == 8);

  // Interrupted after epoch 1 and resumed, both halves with graphs: the same end state.
  run("adamw_resumed", "adamw", 1.0, true, 2, 1, false);
  run("adamw_resumed", "adamw", 1.0, true, 2, 0, true);
  CHECK(test::differing_tensors(dir / "adamw_eager/last.safetensors", dir / "adamw_resumed/last.safetensors").empty());
  // (SGD's device-side step is checked bit for bit against the host-scalar one above; a
  // captured SGD run would add a minute on the emulator for the same capture machinery.)
}

TEST_CASE("--cuda-graph needs a CUDA device") {
  test::TempDir dir("async_graph_cpu");
  TrainOptions o = small_cuda_run(dir / "run");
  o.device = Device::CPU;
  o.cuda_graph = true;
  CHECK_THROWS_WITH(validate_train_options(o), doctest::Contains("--cuda-graph needs --device cuda"));
}

}  // TEST_SUITE
