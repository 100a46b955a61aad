// Inline SVG line charts (see svg.h).
#include "report/svg.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace cxr {

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / std::max(count, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / step + 1e-9) * step, last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0; first + i * step <= last + step * 1e-6 && i < 1000; ++i) {
    const double t = first + i * step;
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string palette_color(std::size_t index) {
  static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                                 "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
                                 "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"};
  return colors[index % (sizeof colors / sizeof colors[0])];
}

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

std::string svg_line_chart(const SvgChart& c) {
  // Data ranges.
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : c.series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  std::vector<double> xt = nice_ticks(std::isfinite(c.x_min) ? c.x_min : x0, std::isfinite(c.x_max) ? c.x_max : x1);
  std::vector<double> yt = nice_ticks(std::isfinite(c.y_min) ? c.y_min : y0, std::isfinite(c.y_max) ? c.y_max : y1);
  const double ax0 = std::isfinite(c.x_min) ? c.x_min : xt.front(), ax1 = std::isfinite(c.x_max) ? c.x_max : xt.back();
  const double ay0 = std::isfinite(c.y_min) ? c.y_min : yt.front(), ay1 = std::isfinite(c.y_max) ? c.y_max : yt.back();

  // Layout: plot area inside margins; the legend to the right when there is one.
  std::size_t legend_items = 0, legend_chars = 0;
  for (const auto& s : c.series)
    if (s.in_legend) ++legend_items, legend_chars = std::max(legend_chars, s.name.size());
  const bool legend = c.legend && legend_items > 0;
  const double legend_w = legend ? 28 + 6.5 * static_cast<double>(legend_chars) : 0;
  const double W = c.width, H = c.height;
  std::size_t tick_chars = 1;
  for (double t : yt) tick_chars = std::max(tick_chars, tick_label(t).size());
  const double ml = 26 + 6.2 * static_cast<double>(tick_chars), mr = 12 + legend_w, mt = c.title.empty() ? 12 : 30, mb = 42;
  const double pw = std::max(W - ml - mr, 10.0), ph = std::max(H - mt - mb, 10.0);
  auto X = [&](double v) { return ml + (ax1 > ax0 ? (v - ax0) / (ax1 - ax0) : 0.5) * pw; };
  auto Y = [&](double v) { return mt + ph - (ay1 > ay0 ? (v - ay0) / (ay1 - ay0) : 0.5) * ph; };

  std::ostringstream o;
  o << "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\"";
  if (!c.id.empty()) o << " id=\"" << html_escape(c.id) << "\"";
  o << " width=\"" << c.width << "\" height=\"" << c.height << "\" viewBox=\"0 0 " << c.width << " " << c.height
    << "\" role=\"img\" aria-label=\"" << html_escape(c.title) << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n";
  if (!c.title.empty())
    o << "<text x=\"" << num(ml + pw / 2) << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">"
      << html_escape(c.title) << "</text>\n";
  // Grid and ticks.
  o << "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n";
  for (double t : xt)
    if (t >= ax0 - 1e-12 && t <= ax1 + 1e-12)
      o << "<line x1=\"" << num(X(t)) << "\" y1=\"" << num(mt) << "\" x2=\"" << num(X(t)) << "\" y2=\"" << num(mt + ph)
        << "\"/>\n";
  for (double t : yt)
    if (t >= ay0 - 1e-12 && t <= ay1 + 1e-12)
      o << "<line x1=\"" << num(ml) << "\" y1=\"" << num(Y(t)) << "\" x2=\"" << num(ml + pw) << "\" y2=\"" << num(Y(t))
        << "\"/>\n";
  o << "</g>\n<g fill=\"#333\">\n";
  for (double t : xt)
    if (t >= ax0 - 1e-12 && t <= ax1 + 1e-12)
      o << "<text x=\"" << num(X(t)) << "\" y=\"" << num(mt + ph + 14) << "\" text-anchor=\"middle\">" << tick_label(t)
        << "</text>\n";
  for (double t : yt)
    if (t >= ay0 - 1e-12 && t <= ay1 + 1e-12)
      o << "<text x=\"" << num(ml - 5) << "\" y=\"" << num(Y(t) + 4) << "\" text-anchor=\"end\">" << tick_label(t)
        << "</text>\n";
  o << "</g>\n";
  o << "<rect x=\"" << num(ml) << "\" y=\"" << num(mt) << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
    << "\" fill=\"none\" stroke=\"#555\"/>\n";
  if (!c.x_label.empty())
    o << "<text x=\"" << num(ml + pw / 2) << "\" y=\"" << num(H - 8) << "\" text-anchor=\"middle\">"
      << html_escape(c.x_label) << "</text>\n";
  if (!c.y_label.empty())
    o << "<text transform=\"translate(13," << num(mt + ph / 2) << ") rotate(-90)\" text-anchor=\"middle\">"
      << html_escape(c.y_label) << "</text>\n";

  // Series, clipped to the plot area.
  const std::string clip = (c.id.empty() ? std::string("chart") : html_escape(c.id)) + "-clip";
  o << "<clipPath id=\"" << clip << "\"><rect x=\"" << num(ml) << "\" y=\"" << num(mt) << "\" width=\"" << num(pw)
    << "\" height=\"" << num(ph) << "\"/></clipPath>\n<g clip-path=\"url(#" << clip << ")\" fill=\"none\">\n";
  for (std::size_t k = 0; k < c.series.size(); ++k) {
    const SvgSeries& s = c.series[k];
    const std::string color = s.color.empty() ? palette_color(k) : s.color;
    std::string d;
    bool pen_down = false;
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        pen_down = false;
        continue;
      }
      d += (pen_down ? "L" : "M") + num(X(s.x[i])) + " " + num(Y(s.y[i]));
      pen_down = true;
    }
    if (d.empty()) continue;
    o << "<path d=\"" << d << "\" stroke=\"" << html_escape(color) << "\" stroke-width=\"" << num(s.width) << "\"";
    if (s.dashed) o << " stroke-dasharray=\"5 4\"";
    o << "><title>" << html_escape(s.name) << "</title></path>\n";
    // A lone point would be invisible as a path: mark it.
    if (std::count(d.begin(), d.end(), 'L') == 0)
      o << "<circle cx=\"" << num(X(s.x.front())) << "\" cy=\"" << num(Y(s.y.front())) << "\" r=\"2.5\" fill=\""
        << html_escape(color) << "\"/>\n";
  }
  o << "</g>\n";
  if (legend) {
    double ly = mt + 4;
    const double lx = ml + pw + 10;
    for (std::size_t k = 0; k < c.series.size(); ++k) {
      const SvgSeries& s = c.series[k];
      if (!s.in_legend) continue;
      const std::string color = s.color.empty() ? palette_color(k) : s.color;
      o << "<line x1=\"" << num(lx) << "\" y1=\"" << num(ly + 4) << "\" x2=\"" << num(lx + 18) << "\" y2=\""
        << num(ly + 4) << "\" stroke=\"" << html_escape(color) << "\" stroke-width=\"" << num(std::max(s.width, 2.0))
        << "\"" << (s.dashed ? " stroke-dasharray=\"5 4\"" : "") << "/>\n";
      o << "<text x=\"" << num(lx + 22) << "\" y=\"" << num(ly + 8) << "\">" << html_escape(s.name) << "</text>\n";
      ly += 14;
    }
  }
  o << "</svg>\n";
  return o.str();
}

}  // namespace cxr
