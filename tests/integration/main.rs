//! The integration tests, in one binary: its two test threads take the next test of any file,
//! so no file's last, longest test leaves a core idle while it finishes.

mod boot;
mod build;
mod ci_report;
mod common;
mod corpus;
mod crashes_workdir;
mod dashboard;
mod description_fixtures;
mod descriptions;
mod descriptions_fetch;
mod execprog;
mod faults;
mod file_safety;
mod fuzz;
mod image_boot;
mod image_build;
mod image_fetch;
mod init;
mod manifest_errors;
mod patch_fuzz;
mod patch_lines;
mod patch_regress;
mod probe;
mod prog2c;
mod pseudo;
mod regress;
mod regress_fuzz;
mod report_agreement;
mod reports;
mod repro;
mod selection_errors;
mod snapshot;
mod symbolize;
