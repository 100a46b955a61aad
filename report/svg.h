// Inline SVG line charts for the HTML report (report/report_html.h): axes, ticks, grid lines,
// a legend, one <path> per series. No script, no external resource.
//
//   SvgChart c;  c.id = "chart-loss";  c.title = "Loss";  c.x_label = "epoch";
//   c.series.push_back({"train", {1, 2, 3}, {0.9, 0.7, 0.6}});
//   std::string svg = svg_line_chart(c);   // "<svg class=\"chart\" id=\"chart-loss\" ...>...</svg>"
//
// Non-finite y values break a line (a gap). Axis ranges are the data's (rounded out to nice
// ticks) unless given.
#pragma once

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace cxr {

// &, <, >, " and ' as entities: for text and attribute values.
std::string html_escape(const std::string& s);

// About `count` round-numbered ticks (1, 2 or 5 x 10^k apart) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int count = 5);

struct SvgSeries {
  SvgSeries() = default;
  SvgSeries(std::string name_, std::vector<double> x_, std::vector<double> y_, std::string color_ = "",
            bool dashed_ = false, double width_ = 1.5)
      : name(std::move(name_)), x(std::move(x_)), y(std::move(y_)), color(std::move(color_)), dashed(dashed_),
        width(width_) {}
  std::string name;
  std::vector<double> x, y;
  std::string color;           // CSS colour; empty: from the palette
  bool dashed = false;
  double width = 1.5;          // stroke width
  bool in_legend = true;
};

struct SvgChart {
  std::string id, title, x_label, y_label;
  int width = 460, height = 300;
  double x_min = NAN, x_max = NAN, y_min = NAN, y_max = NAN;  // NaN: from the data
  std::vector<SvgSeries> series;
  bool legend = true;
};

// A palette of distinguishable colours (Tableau 20's order); index wraps.
std::string palette_color(std::size_t index);

std::string svg_line_chart(const SvgChart& chart);

}  // namespace cxr
