// Checkpoints: NamedTensors, strict/non-strict/backbone loading, the metadata schema.
// See checkpoint.h and docs/checkpoints.md.
#include "checkpoint/checkpoint.h"

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace cxr {

namespace {

bool has_prefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "a, b, c and 7 more"
std::string name_list(const std::vector<std::string>& names, std::size_t shown = 8) {
  std::ostringstream os;
  for (std::size_t i = 0; i < names.size() && i < shown; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > shown) os << " and " << names.size() - shown << " more";
  return os.str();
}

}  // namespace

// --- NamedTensors ---------------------------------------------------------------------

void NamedTensors::add(const std::string& name, const Tensor& t) {
  CXR_CHECK(!name.empty(), "NamedTensors::add: empty name");
  CXR_CHECK(t.defined(), "NamedTensors::add: tensor '", name, "' is undefined");
  CXR_CHECK(find(name) == nullptr, "NamedTensors::add: the name '", name, "' is already taken");
  items_.emplace_back(name, t);
}

void NamedTensors::add_all(const std::string& prefix, const NamedTensors& other) {
  for (const auto& [name, t] : other) add(prefix + name, t);
}

Tensor* NamedTensors::find(const std::string& name) {
  for (auto& [n, t] : items_)
    if (n == name) return &t;
  return nullptr;
}

const Tensor* NamedTensors::find(const std::string& name) const {
  return const_cast<NamedTensors*>(this)->find(name);
}

const Tensor& NamedTensors::at(const std::string& name) const {
  const Tensor* t = find(name);
  CXR_CHECK(t != nullptr, "no tensor named '", name, "' among ", items_.size(), " tensors");
  return *t;
}

std::int64_t NamedTensors::numel() const {
  std::int64_t n = 0;
  for (const auto& [name, t] : items_) n += t.numel();
  return n;
}

// --- loading -----------------------------------------------------------------------------

std::vector<std::string> head_prefixes() { return {"fc.", "classifier.", "cls_head.", "box_head."}; }

LoadOptions backbone_options() {
  LoadOptions o;
  o.skip_prefixes = head_prefixes();
  o.skip_prefixes.push_back(kOptimizerPrefix);
  return o;
}

LoadOptions model_options() {
  LoadOptions o;
  o.skip_prefixes = {kOptimizerPrefix};
  return o;
}

std::string LoadReport::summary() const {
  std::ostringstream os;
  os << "loaded " << loaded.size() << " tensors";
  if (!skipped.empty()) os << ", skipped " << skipped.size() << " (" << name_list(skipped, 4) << ")";
  if (!missing.empty()) os << ", missing " << missing.size() << " (" << name_list(missing, 4) << ")";
  if (!unexpected.empty()) os << ", unexpected " << unexpected.size() << " (" << name_list(unexpected, 4) << ")";
  return os.str();
}

LoadReport load_state(NamedTensors& dst, const SafetensorsFile& src, const LoadOptions& options,
                      const std::string& what) {
  LoadReport report;
  std::vector<std::pair<Tensor*, const SafetensorsEntry*>> plan;
  std::set<std::string> in_file;
  for (const SafetensorsEntry& e : src.entries) {
    in_file.insert(e.name);
    if (has_prefix(e.name, options.skip_prefixes)) {
      report.skipped.push_back(e.name);
      continue;
    }
    Tensor* d = dst.find(e.name);
    if (d == nullptr) {
      report.unexpected.push_back(e.name);
      continue;
    }
    CXR_CHECK(d->shape() == e.tensor.shape(), what, ": tensor '", e.name, "' has shape ", shape_str(e.tensor.shape()),
              " in the file but ", shape_str(d->shape()), " in the model");
    const DType from = e.tensor.dtype();
    const bool ok = d->dtype() == from || d->dtype() == DType::F32;
    CXR_CHECK(ok, what, ": tensor '", e.name, "' is ", e.file_dtype, " in the file and cannot be loaded into the model's ",
              dtype_name(d->dtype()), " tensor");
    plan.emplace_back(d, &e);
  }
  for (const auto& [name, t] : dst) {
    if (has_prefix(name, options.skip_prefixes)) continue;
    if (!in_file.count(name)) report.missing.push_back(name);
  }
  if (options.strict) {
    CXR_CHECK(report.missing.empty() && report.unexpected.empty(), what, ": strict load: ",
              report.missing.empty() ? "" : "missing from the file: " + name_list(report.missing),
              !report.missing.empty() && !report.unexpected.empty() ? "; " : "",
              report.unexpected.empty() ? "" : "not in the model: " + name_list(report.unexpected),
              " (", report.missing.size(), " missing, ", report.unexpected.size(), " unexpected)");
  }
  for (auto& [d, e] : plan) {
    if (d->dtype() == e->tensor.dtype()) d->copy_(e->tensor);
    else d->copy_(to_f32_cpu(e->tensor));
    report.loaded.push_back(e->name);
  }
  return report;
}

// --- metadata ------------------------------------------------------------------------------

namespace {

template <typename T>
T parse_json_value(const SafetensorsMetadata& m, const std::string& key, const std::string& what) {
  const std::string& text = m.at(key);
  try {
    return nlohmann::json::parse(text).get<T>();
  } catch (const nlohmann::json::exception& e) {
    CXR_FAIL(what, ": metadata '", key, "' = '", text.substr(0, 200), "' is malformed: ", e.what());
  }
}

std::string json_text(const nlohmann::json& j) { return j.dump(); }

const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {"cxr.format", "format", "architecture", "image_size", "class_names",
                                             "normalize_mean", "normalize_std", "thresholds", "epoch", "step"};
  return keys;
}

}  // namespace

SafetensorsMetadata to_metadata(const CheckpointMeta& meta) {
  SafetensorsMetadata m = meta.extra;
  m["cxr.format"] = kCheckpointFormat;
  m["format"] = "pt";  // what PyTorch-side safetensors loaders expect
  if (!meta.architecture.empty()) m["architecture"] = meta.architecture;
  if (meta.image_size > 0) m["image_size"] = std::to_string(meta.image_size);
  if (!meta.class_names.empty()) m["class_names"] = json_text(meta.class_names);
  if (!meta.mean.empty()) m["normalize_mean"] = json_text(meta.mean);
  if (!meta.std.empty()) m["normalize_std"] = json_text(meta.std);
  if (!meta.thresholds.empty()) m["thresholds"] = json_text(meta.thresholds);
  if (meta.epoch >= 0) m["epoch"] = std::to_string(meta.epoch);
  if (meta.step >= 0) m["step"] = std::to_string(meta.step);
  return m;
}

CheckpointMeta from_metadata(const SafetensorsMetadata& m, const std::string& what) {
  CheckpointMeta meta;
  if (m.count("cxr.format"))
    CXR_CHECK(m.at("cxr.format") == kCheckpointFormat, what, ": metadata cxr.format is '", m.at("cxr.format"),
              "', this build reads '", kCheckpointFormat, "'");
  if (m.count("architecture")) meta.architecture = m.at("architecture");
  if (m.count("image_size")) meta.image_size = parse_json_value<std::int64_t>(m, "image_size", what);
  if (m.count("class_names")) meta.class_names = parse_json_value<std::vector<std::string>>(m, "class_names", what);
  if (m.count("normalize_mean")) meta.mean = parse_json_value<std::vector<double>>(m, "normalize_mean", what);
  if (m.count("normalize_std")) meta.std = parse_json_value<std::vector<double>>(m, "normalize_std", what);
  if (m.count("thresholds")) meta.thresholds = parse_json_value<std::vector<double>>(m, "thresholds", what);
  if (m.count("epoch")) meta.epoch = parse_json_value<std::int64_t>(m, "epoch", what);
  if (m.count("step")) meta.step = parse_json_value<std::int64_t>(m, "step", what);
  CXR_CHECK(meta.mean.size() == meta.std.size(), what, ": metadata normalize_mean has ", meta.mean.size(),
            " values but normalize_std has ", meta.std.size());
  for (double s : meta.std) CXR_CHECK(s > 0, what, ": metadata normalize_std has a non-positive value ", s);
  CXR_CHECK(meta.thresholds.empty() || meta.thresholds.size() == meta.class_names.size(), what, ": metadata has ",
            meta.thresholds.size(), " thresholds for ", meta.class_names.size(), " class names");
  for (const auto& [k, v] : m)
    if (!known_keys().count(k)) meta.extra[k] = v;
  return meta;
}

void save_checkpoint(const std::string& path, const NamedTensors& state, const CheckpointMeta& meta) {
  std::vector<SafetensorsEntry> entries;
  entries.reserve(state.size());
  for (const auto& [name, t] : state) {
    const bool widen = t.dtype() == DType::I32 && ends_with(name, "num_batches_tracked");
    entries.push_back({name, t, widen ? "I64" : ""});
  }
  write_safetensors_entries(path, entries, to_metadata(meta));
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint c;
  c.path = path;
  c.file = read_safetensors(path);
  c.meta = from_metadata(c.file.metadata, path);
  return c;
}

NamedTensors model_state(Module& model) {
  NamedTensors s;
  for (auto& [name, p] : model.named_parameters()) s.add(name, p->value);
  for (auto& [name, b] : model.named_buffers()) s.add(name, *b);
  return s;
}

}  // namespace cxr
