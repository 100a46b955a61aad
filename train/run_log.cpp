// The log and the per-epoch metrics of a run (see run_log.h).
#include "train/run_log.h"

#include <cerrno>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "tensor/error.h"
#include "train/resume.h"
#include "train/trainer.h"

namespace cxr {

RunLog::RunLog(const std::string& path, bool append, Progress& progress) : path_(path), progress_(progress) {
  if (path.empty()) return;  // no file (a distributed run's ranks other than 0)
  file_.open(path, append ? std::ios::app : std::ios::trunc);
  CXR_CHECK(file_, "cannot open ", path, " for writing: ", std::strerror(errno));
}

void RunLog::line(const std::string& text) {
  if (path_.empty()) return;
  file_ << text << "\n" << std::flush;
  CXR_CHECK(file_, "cannot write ", path_, ": ", std::strerror(errno));
}

void RunLog::say(const std::string& text) {
  progress_.message(text);
  line(text);
}

MetricsCsv::MetricsCsv(const std::string& path, bool append, const std::vector<std::string>& class_names)
    : path_(path) {
  if (path.empty()) return;  // no file
  file_.open(path, append ? std::ios::app : std::ios::trunc);
  CXR_CHECK(file_, "cannot open ", path, " for writing");
  if (append) return;
  file_ << "epoch,step,lr,train_loss,val_loss,val_mean_auroc,val_mean_ap,images_per_s,seconds";
  for (const auto& n : class_names) file_ << ",auroc_" << n;
  file_ << "\n" << std::flush;
}

void MetricsCsv::write(const EpochRecord& r) {
  if (path_.empty()) return;
  auto fixed2 = [](double v) {
    std::ostringstream os;
    os << std::fixed << std::setprecision(2) << v;
    return os.str();
  };
  file_ << r.epoch << "," << r.step << "," << exact(r.lr) << "," << exact(r.train_loss) << "," << exact(r.val_loss)
        << "," << exact(r.val_auc) << "," << exact(r.val_ap) << "," << fixed2(r.images_per_second) << ","
        << fixed2(r.seconds);
  for (double a : r.class_auc) file_ << "," << exact(a);
  file_ << "\n" << std::flush;
  CXR_CHECK(file_, "cannot write ", path_, ": ", std::strerror(errno));
}

}  // namespace cxr
