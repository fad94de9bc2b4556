//! Plots of the run's figures over time, drawn server-side as SVG (plotters).

use plotters::prelude::*;

use super::history::Sample;

/// One line chart of `value` over the samples' time, as an SVG document.
pub fn line_chart(title: &str, samples: &[Sample], value: impl Fn(&Sample) -> f64) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (460, 210)).into_drawing_area();
        // Drawing into a string fails only on a plotting bug; the page then shows no plot.
        let _ = draw(&root, title, samples, &value);
        let _ = root.present();
    }
    svg
}

fn draw<'a>(
    root: &'a DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    samples: &[Sample],
    value: &dyn Fn(&Sample) -> f64,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    root.fill(&WHITE)?;
    let max_x = samples.last().map_or(1.0, |s| s.secs).max(1.0);
    let max_y = samples.iter().map(value).fold(1.0_f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 15))
        .margin(6)
        .x_label_area_size(26)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .x_labels(6)
        .y_labels(5)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(LineSeries::new(
        samples.iter().map(|s| (s.secs, value(s))),
        BLUE.stroke_width(2),
    ))?;
    Ok(())
}
