// Guarantees on bad input and interruption (docs/reliability.md): non-finite loss or gradient
// (stop naming the step and the parameter, or --skip-nonfinite), SIGINT / SIGTERM (resume
// checkpoint, exit code 130 / 143, a second signal exits at once, bit-identical resumption),
// unwritable output and a full disk (clear errors, a good checkpoint never replaced by a
// partial one).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "data/loader.h"
#include "tests/data/data_test_util.h"
#include "tests/train/train_test_util.h"
#include "checkpoint/checkpoint.h"
#include "cli/cli_args.h"
#include "cli/cmd_train.h"
#include "checkpoint/safetensors.h"
#include "train/interrupt.h"
#include "train/trainer.h"

using namespace cxr;
namespace fs = std::filesystem;

namespace {

TrainOptions small_run(const std::string& out, int epochs) {
  TrainOptions o;
  o.data_dir = test::small_synth_dir();
  o.out_dir = out;
  o.model = "resnet18";
  o.image_size = 32;
  o.epochs = epochs;
  o.batch_size = 8;
  o.workers = 2;
  o.seed = 5;
  o.lr = 0.001;
  o.warmup_steps = 1;
  o.limit = 24;  // 3 steps per epoch
  o.quiet = true;
  return o;
}

// The same run as small_run, as train_cxr words (for --resume through the command line).
std::vector<std::string> small_run_args(const std::string& out, int epochs) {
  return {"--data",  test::small_synth_dir(), "--out",    out,   "--model",  "resnet18", "--image-size",
          "32",      "--epochs",              std::to_string(epochs), "--batch-size", "8", "--workers", "2",
          "--seed",  "5",                     "--lr",     "0.001", "--warmup", "1", "--limit", "24", "--quiet"};
}

int run_cli(std::vector<std::string> words) {
  std::vector<const char*> argv;
  for (const auto& w : words) argv.push_back(w.c_str());
  std::ostringstream os;
  return cli::run_train(static_cast<int>(argv.size()), argv.data(), os);
}

std::int64_t metrics_rows(const std::string& run) {
  std::ifstream f(run + "/metrics.csv");
  std::int64_t rows = 0;
  for (std::string l; std::getline(f, l);) ++rows;
  return rows;
}

// The step after epoch 1 from metrics.csv's second line.
std::int64_t steps_of_first_epoch(const std::string& run) {
  std::ifstream f(run + "/metrics.csv");
  std::string header, row;
  std::getline(f, header);
  std::getline(f, row);
  return std::stoll(row.substr(row.find(',') + 1));
}

bool has_temp_files(const std::string& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

// A fork()ed child runs `body`; its exit status and what it wrote to the pipe come back.
struct ChildResult {
  int status = -1;
  std::string text;
};
template <typename F>
ChildResult in_child(F body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string text;
    int code = 99;
    try {
      code = body(text);
    } catch (const std::exception& e) {
      text += std::string("unexpected exception: ") + e.what();
    }
    [[maybe_unused]] auto n = ::write(fds[1], text.data(), text.size());
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (ssize_t got; (got = ::read(fds[0], buf, sizeof buf)) > 0;) r.text.append(buf, static_cast<std::size_t>(got));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.status = status;
  return r;
}

// Can this process mount a tmpfs in a private mount namespace (root, unshare allowed)? Probed
// once in a child when the test is registered, so that the test shows as skipped otherwise.
bool tmpfs_mount_possible() {
  static const bool possible = [] {
    if (::geteuid() != 0) return false;
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      char dir[] = "/tmp/cxr_tmpfs_probe_XXXXXX";
      if (!::mkdtemp(dir)) ::_exit(1);
      int code = 0;
      if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount("tmpfs", dir, "tmpfs", 0, "size=64k") != 0)
        code = 1;
      else
        ::umount(dir);
      ::rmdir(dir);
      ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }();
  return possible;
}

// A checkpoint of about `floats` * 4 bytes.
void write_test_checkpoint(const std::string& path, std::int64_t floats, float value) {
  NamedTensors s;
  // from_vector, not full(): no OpenMP kernel in a fork()ed child (libgomp is not fork-safe).
  s.add("w", Tensor::from_vector(std::vector<float>(static_cast<std::size_t>(floats), value), {floats}));
  CheckpointMeta m;
  m.architecture = "test";
  save_checkpoint(path, s, m);
}

// The full-disk check shared by the tmpfs and the RLIMIT_FSIZE variants (in a child): a good
// small checkpoint, then a large one to the same path must fail naming the path and the OS
// error, and leave the good one byte for byte, with no temporary file behind.
int full_disk_check(const std::string& dir, std::string& text) {
  const std::string path = dir + "/last.safetensors";
  write_test_checkpoint(path, 1000, 1.f);  // ~4 KB: fits
  const std::string good = test::read_all(path);
  try {
    write_test_checkpoint(path, 1 << 20, 2.f);  // 4 MiB: does not fit
    text += "the large checkpoint was written although it should not fit";
    return 2;
  } catch (const Error& e) {
    text += e.what();
  }
  if (text.find(path) == std::string::npos) return 3;
  if (test::read_all(path) != good) return 4;
  if (has_temp_files(dir)) return 5;
  if (read_safetensors(path).at("w").f32()[0] != 1.f) return 6;
  return 0;
}

}  // namespace

TEST_SUITE("train") {

// --- 3. non-finite values ------------------------------------------------------------------------

TEST_CASE("reliability: a NaN gradient stops training naming the step and the parameter; last.safetensors stays") {
  test::TempDir dir("rel_nan_grad");
  const std::string run = dir / "run";
  TrainOptions o = small_run(run, 2);
  o.stop_after_epochs = 1;
  std::ostringstream sink;
  train_model(o, sink);
  const std::string good = test::read_all(run + "/last.safetensors");
  const std::int64_t s1 = steps_of_first_epoch(run);

  o.stop_after_epochs = 0;
  o.resume = true;
  const std::int64_t bad_step = s1 + 2;
  o.hooks.after_backward = [&](std::int64_t step, CxrModel& model) {
    if (step != bad_step) return;
    for (auto& [name, p] : model.named_parameters())
      if (name == "layer2.0.conv1.weight") p->grad.f32()[7] = std::numeric_limits<float>::quiet_NaN();
  };
  std::string message;
  try {
    train_model(o, sink);
  } catch (const Error& e) {
    message = e.what();
  }
  MESSAGE(message);
  CHECK(message.find("non-finite values at step " + std::to_string(bad_step)) != std::string::npos);
  CHECK(message.find("the gradient of layer2.0.conv1.weight") != std::string::npos);
  CHECK(message.find("--skip-nonfinite") != std::string::npos);
  CHECK(test::read_all(run + "/last.safetensors") == good);  // the last good checkpoint, untouched
  CHECK(test::read_all(run + "/log.txt").find("non-finite values at step") != std::string::npos);
}

TEST_CASE("reliability: a NaN label gives a non-finite loss: an error; a NaN input image with --skip-nonfinite: a "
          "skipped step, counted and logged, no NaN in the weights or batch-norm statistics") {
  test::TempDir dir("rel_nan_input");
  std::ostringstream sink;
  TrainOptions o = small_run(dir / "stop", 1);
  o.hooks.before_forward = [](std::int64_t step, const data::Batch& b) {
    if (step != 2) return;
    Tensor labels = b.labels;  // shares the batch's storage
    labels.f32()[3] = std::numeric_limits<float>::quiet_NaN();
  };
  std::string message;
  try {
    train_model(o, sink);
  } catch (const Error& e) {
    message = e.what();
  }
  MESSAGE(message);
  CHECK(message.find("non-finite values at step 2") != std::string::npos);
  CHECK(message.find("the training loss is nan") != std::string::npos);
  CHECK(message.find("images of the batch: ") != std::string::npos);
  CHECK(!fs::exists(dir / "stop/last.safetensors"));

  // A NaN pixel: ReLU may swallow it in the forward pass (the loss can stay finite), but the
  // gradient of conv1 and the batch-norm statistics of bn1 are NaN.
  auto poison_image = [](std::int64_t step, const data::Batch& b) {
    if (step != 2) return;
    Tensor images = b.images;
    images.f32()[5] = std::numeric_limits<float>::quiet_NaN();
  };
  TrainOptions k = small_run(dir / "skip", 1);
  k.hooks.before_forward = poison_image;
  k.skip_nonfinite = true;
  const TrainResult r = train_model(k, sink);
  CHECK(r.skipped_steps == 1);
  CHECK(train_exit_code(r) == 0);
  const std::string log = test::read_all(dir / "skip/log.txt");
  CHECK(log.find("skipped non-finite values at step 2") != std::string::npos);
  CHECK(log.find("1 steps skipped for non-finite values") != std::string::npos);
  // No NaN reached the weights, the optimiser state or the batch-norm statistics.
  CHECK(test::checkpoint_all_finite(dir / "skip/last.safetensors"));
  REQUIRE(r.epochs.size() == 1);
  CHECK(std::isfinite(r.epochs[0].train_loss));
}

TEST_CASE("reliability: --skip-nonfinite is a train_cxr flag") {
  test::TempDir dir("rel_flag");
  auto args = small_run_args(dir / "run", 1);
  args.push_back("--skip-nonfinite");
  CHECK(run_cli(args) == 0);
}

// --- 4. interrupts ----------------------------------------------------------------------------------

TEST_CASE("reliability: SIGINT mid-epoch and SIGTERM at an epoch boundary save a resume checkpoint, exit "
          "130 / 143, and the resumed runs end bit-identical to an uninterrupted one (CPU)") {
  test::TempDir dir("rel_signal");
  const std::string full = dir / "full", mid = dir / "mid", edge = dir / "edge";
  REQUIRE(run_cli(small_run_args(full, 2)) == 0);
  const std::int64_t s1 = steps_of_first_epoch(full);
  REQUIRE(s1 >= 2);

  std::ostringstream sink;
  {  // SIGINT after step 2 of epoch 1 (mid-epoch)
    TrainOptions o = small_run(mid, 2);
    o.hooks.after_step = [](std::int64_t step) {
      if (step == 2) std::raise(SIGINT);
    };
    const TrainResult r = train_model(o, sink);
    CHECK(r.interrupted_by == SIGINT);
    CHECK(train_exit_code(r) == 130);
    CHECK(r.epochs.empty());
    const Checkpoint ck = load_checkpoint(mid + "/last.safetensors");
    CHECK(ck.meta.step == 2);
    CHECK(ck.meta.epoch == 0);
    CHECK(ck.meta.extra.at("resume.batch") == "2");
    CHECK(ck.file.find("optimizer.conv1.weight.exp_avg") != nullptr);
    CHECK(test::read_all(mid + "/log.txt").find("interrupted by SIGINT at step 2") != std::string::npos);
    CHECK(InterruptHandlers::pending() == 0);  // the handlers are gone with the run
  }
  {  // SIGTERM after the last step of epoch 1 (before its validation)
    TrainOptions o = small_run(edge, 2);
    o.hooks.after_step = [s1](std::int64_t step) {
      if (step == s1) std::raise(SIGTERM);
    };
    const TrainResult r = train_model(o, sink);
    CHECK(r.interrupted_by == SIGTERM);
    CHECK(train_exit_code(r) == 143);
  }
  for (const std::string& run : {mid, edge}) {
    auto resume = small_run_args(run, 2);
    resume.push_back("--resume");
    REQUIRE(run_cli(resume) == 0);
    const auto diff = test::differing_tensors(full + "/last.safetensors", run + "/last.safetensors");
    CHECK_MESSAGE(diff.empty(), run << ": " << diff.size() << " tensors differ, the first "
                                    << (diff.empty() ? "-" : diff[0]));
    CHECK(metrics_rows(run) == 3);
    // The resumed epoch reports the same train loss as the uninterrupted one.
    std::ifstream a(full + "/metrics.csv"), b(run + "/metrics.csv");
    std::string la, lb;
    std::getline(a, la);
    std::getline(b, lb);
    std::getline(a, la);
    std::getline(b, lb);
    auto loss = [](const std::string& row) {  // epoch,step,lr,train_loss,...
      std::stringstream ss(row);
      std::string f;
      for (int i = 0; i < 4; ++i) std::getline(ss, f, ',');
      return f;
    };
    CHECK(loss(la) == loss(lb));
  }
}

TEST_CASE("reliability: a second SIGINT exits at once with 130; the handlers are restored afterwards") {
  const ChildResult r = in_child([](std::string& text) {
    InterruptHandlers h;
    std::raise(SIGINT);
    if (InterruptHandlers::pending() != SIGINT) {
      text = "the first signal did not set the flag";
      return 3;
    }
    std::raise(SIGINT);  // exits here with 130
    text = "the second signal did not exit";
    return 4;
  });
  INFO(r.text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 130);

  struct sigaction before {}, after {};
  ::sigaction(SIGTERM, nullptr, &before);
  { InterruptHandlers h; }
  ::sigaction(SIGTERM, nullptr, &after);
  const bool restored = before.sa_handler == after.sa_handler;
  CHECK(restored);
}

// --- 5. unwritable output, full disk ----------------------------------------------------------------

TEST_CASE("reliability: unwritable output: a read-only folder (chmod 0555) is a clear error") {
  // As root, chmod alone does not stop writes (CAP_DAC_OVERRIDE). For this thread only, file
  // access then runs as user nobody: a filesystem uid other than 0 drops that capability
  // (setfsuid(2)), so the folder is read-only to the test as it is to an ordinary user.
  struct FileAccessAsNobody {
    bool active = ::geteuid() == 0;
    FileAccessAsNobody() {
      if (active) ::setfsgid(65534), ::setfsuid(65534);
    }
    ~FileAccessAsNobody() {
      if (active) ::setfsuid(0), ::setfsgid(0);
    }
  };
  test::TempDir dir("rel_ro");
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  const std::string ro = dir / "ro";
  fs::create_directory(ro);
  ::chmod(ro.c_str(), 0555);
  {
    FileAccessAsNobody nobody;
    std::ostringstream sink;
    CHECK_THROWS_WITH_AS(train_model(small_run(ro + "/run", 1), sink),
                         doctest::Contains(("cannot create the run folder " + ro + "/run: Permission denied").c_str()),
                         Error);
    CHECK_THROWS_WITH_AS(write_test_checkpoint(ro + "/x.safetensors", 10, 1.f),
                         doctest::Contains((ro + "/x.safetensors").c_str()), Error);
  }
  ::chmod(ro.c_str(), 0755);
}

TEST_CASE("reliability: unwritable output: a run folder under a regular file is a clear error naming the path "
          "and the OS error (runs as root too)") {
  test::TempDir dir("rel_notdir");
  const std::string file = dir / "file";
  test::write_text(file, "x");
  std::ostringstream sink;
  CHECK_THROWS_WITH_AS(train_model(small_run(file + "/run", 1), sink),
                       doctest::Contains(("cannot create the run folder " + file + "/run: Not a directory").c_str()), Error);
  CHECK_THROWS_WITH_AS(write_test_checkpoint(file + "/x.safetensors", 10, 1.f),
                       doctest::Contains((file + "/x.safetensors").c_str()), Error);
  CHECK_THROWS_WITH_AS(write_test_checkpoint(file + "/x.safetensors", 10, 1.f), doctest::Contains("Not a directory"),
                       Error);
}

TEST_CASE("reliability: full disk (tmpfs of 1 MiB in a private mount namespace, unshare -m): a good checkpoint "
          "is never replaced by a partial one" *
          doctest::skip(!tmpfs_mount_possible())) {
  // Skipped unless root may unshare the mount namespace (CI containers often may not).
  test::TempDir dir("rel_tmpfs");
  const std::string mnt = dir / "mnt";
  fs::create_directory(mnt);
  const ChildResult r = in_child([&](std::string& text) {
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
      text = std::string("mount failed: ") + std::strerror(errno);
      return 10;
    }
    const int code = full_disk_check(mnt, text);
    ::umount(mnt.c_str());
    return code;
  });
  MESSAGE(r.text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.text.find("No space left on device") != std::string::npos);
  CHECK(r.text.find("nothing was replaced") != std::string::npos);
}

TEST_CASE("reliability: full disk simulated with RLIMIT_FSIZE (file size limit, EFBIG): a good checkpoint is "
          "never replaced by a partial one") {
  test::TempDir dir("rel_fsize");
  const std::string d = dir.path();
  const ChildResult r = in_child([&](std::string& text) {
    std::signal(SIGXFSZ, SIG_IGN);  // write(2) then fails with EFBIG instead of killing the process
    struct rlimit lim {};
    lim.rlim_cur = lim.rlim_max = 64 * 1024;
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) {
      text = std::string("setrlimit failed: ") + std::strerror(errno);
      return 10;
    }
    return full_disk_check(d, text);
  });
  MESSAGE(r.text);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.text.find("File too large") != std::string::npos);
  CHECK(r.text.find("nothing was replaced") != std::string::npos);
}

}  // TEST_SUITE
