# Reference numbers for tests/test_metafor_alignment.py, computed with R's metafor.
#
# Run from the repository root:  Rscript validation/metafor_reference.R
# Needs R >= 4.2 with metafor (Debian: apt-get install r-base-core r-cran-metafor).
#
# What it writes:
#   tests/data/metafor/*.csv           the input data, in the column names the mscatlas CLI reads
#   tests/data/metafor_reference.json  every number the alignment tests compare
#
# The script writes the CSV files first and then fits every model from those files as read
# back, so R and Python start from the same bytes. Iterative fits use tight convergence
# settings (metafor's defaults stop at a change in tau^2 below 1e-5, or a bracket of 1.2e-4
# for PM and the Q-profile interval) so that the reference values are the exact solutions of
# the estimating equations; a separate "defaults" block records metafor's numbers under its
# default settings.

suppressPackageStartupMessages({
  library(metafor)
})

out_dir <- file.path("tests", "data", "metafor")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

source(file.path("validation", "json17.R"))  # write_csv17, to_json

# --- input data -------------------------------------------------------------------------
bcg <- with(dat.bcg, data.frame(trial = trial, author = author, year = year, ablat = ablat,
                                ai = tpos, bi = tneg, ci = cpos, di = cneg))
niel <- with(dat.nielweise2007, data.frame(study = study, author = author, year = year,
                                           ai = ai, bi = n1i - ai, ci = ci, di = n2i - ci))
normand <- with(dat.normand1999, data.frame(study = study, source = source,
                                            m1i = m1i, sd1i = sd1i, n1i = n1i,
                                            m2i = m2i, sd2i = sd2i, n2i = n2i))
molloy_es <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
molloy <- data.frame(authors = dat.molloy2014$authors, year = dat.molloy2014$year,
                     meanage = dat.molloy2014$meanage,
                     yi = as.numeric(molloy_es$yi), vi = as.numeric(molloy_es$vi))

files <- list(bcg = bcg, nielweise2007 = niel, normand1999 = normand, molloy2014 = molloy)
for (name in names(files)) write_csv17(files[[name]], file.path(out_dir, paste0(name, ".csv")))
data <- lapply(names(files), function(name) read.csv(file.path(out_dir, paste0(name, ".csv"))))
names(data) <- names(files)

cases <- list(
  list(id = "bcg_RR", file = "bcg", measure = "RR"),
  list(id = "bcg_OR", file = "bcg", measure = "OR"),
  list(id = "bcg_RD", file = "bcg", measure = "RD"),
  list(id = "nielweise2007_RR", file = "nielweise2007", measure = "RR"),
  list(id = "nielweise2007_OR", file = "nielweise2007", measure = "OR"),
  list(id = "nielweise2007_RD", file = "nielweise2007", measure = "RD"),
  list(id = "normand1999_MD", file = "normand1999", measure = "MD"),
  list(id = "normand1999_SMD", file = "normand1999", measure = "SMD"),
  list(id = "normand1999_ROM", file = "normand1999", measure = "ROM"),
  list(id = "molloy2014_GEN", file = "molloy2014", measure = "GEN")
)
metareg_cases <- list(
  list(id = "bcg_RR", mods = c("ablat", "year")),
  list(id = "bcg_OR", mods = c("ablat", "year")),
  list(id = "bcg_RD", mods = c("ablat", "year")),
  list(id = "molloy2014_GEN", mods = c("meanage"))
)
methods <- c("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
tests <- c("z", "knha")
# Convergence settings scaled to the data: a change in tau^2 of 1e-10 times the smallest
# sampling variance (risk differences have variances near 1e-4, mean differences near 10).
tight_for <- function(vi) {
  eps <- 1e-10 * min(vi)
  list(threshold = eps, tol = eps, maxiter = 100000)
}

effects <- function(case) {
  d <- data[[case$file]]
  if (case$measure == "GEN") return(data.frame(yi = d$yi, vi = d$vi))
  if (case$measure %in% c("RR", "OR", "RD")) {
    es <- escalc(measure = case$measure, ai = ai, bi = bi, ci = ci, di = di, data = d)
  } else {
    es <- escalc(measure = case$measure, m1i = m1i, sd1i = sd1i, n1i = n1i,
                 m2i = m2i, sd2i = sd2i, n2i = n2i, data = d)
  }
  data.frame(yi = as.numeric(es$yi), vi = as.numeric(es$vi))
}

na_if_error <- function(expr) tryCatch(expr, error = function(e) NA)
or_na <- function(x) if (is.null(x)) NA else x  # metafor leaves some parts NULL (e.g. no PI for EE)

summarise_fit <- function(es, method, test) {
  tight <- tight_for(es$vi)
  res <- suppressWarnings(rma(yi, vi, data = es, method = method, test = test, control = tight))
  pred <- predict(res)
  ci <- na_if_error(suppressWarnings(confint(res, control = list(tol = tight$tol))$random))
  eg <- suppressWarnings(regtest(res))
  tf <- suppressWarnings(trimfill(res, control = tight))  # trimfill does not reuse res$control
  l1o <- suppressWarnings(leave1out(res))
  list(
    estimate = as.numeric(res$beta), se = res$se, stat = res$zval, p = res$pval,
    ci_lb = res$ci.lb, ci_ub = res$ci.ub, pi_lb = or_na(pred$pi.lb), pi_ub = or_na(pred$pi.ub),
    tau2 = res$tau2,
    tau2_ci_lb = if (is.matrix(ci)) ci["tau^2", "ci.lb"] else NA,
    tau2_ci_ub = if (is.matrix(ci)) ci["tau^2", "ci.ub"] else NA,
    I2 = res$I2, H2 = res$H2, Q = res$QE, Q_p = res$QEp,
    egger_stat = eg$zval, egger_p = eg$pval,
    trimfill_k0 = tf$k0, trimfill_side = tf$side, trimfill_estimate = as.numeric(tf$beta),
    l1o_estimate = l1o$estimate, l1o_se = l1o$se, l1o_tau2 = or_na(l1o$tau2),
    l1o_I2 = l1o$I2, l1o_Q = l1o$Q
  )
}

summarise_metareg <- function(es, mods, method, test) {
  X <- as.matrix(es[, mods, drop = FALSE])
  # With calendar year as a moderator rounding noise can keep tau^2 from settling at the
  # tightest threshold; relax it tenfold at a time until Fisher scoring converges.
  control <- tight_for(es$vi)
  repeat {
    res <- tryCatch(suppressWarnings(rma(es$yi, es$vi, mods = X, method = method, test = test,
                                         control = control)), error = function(e) NULL)
    if (!is.null(res)) break
    control$threshold <- control$threshold * 10
  }
  list(
    beta = as.numeric(res$beta), se = res$se, stat = res$zval, p = res$pval,
    ci_lb = res$ci.lb, ci_ub = res$ci.ub,
    QM = res$QM, QM_p = res$QMp, R2 = or_na(res$R2),
    tau2 = res$tau2, I2 = res$I2, H2 = res$H2, QE = res$QE, QE_p = res$QEp
  )
}

reference <- list(
  generated_by = "validation/metafor_reference.R",
  R_version = paste(R.version$major, R.version$minor, sep = "."),
  metafor_version = as.character(packageVersion("metafor")),
  control = "threshold = tol = 1e-10 * min(vi), maxiter = 100000",
  cases = list(), metareg = list(), defaults = list()
)

for (case in cases) {
  es <- effects(case)
  fits <- list()
  for (method in methods) for (test in tests) {
    fits[[paste(method, test, sep = "_")]] <- summarise_fit(es, method, test)
  }
  reference$cases[[case$id]] <- list(file = paste0(case$file, ".csv"), measure = case$measure,
                                     yi = es$yi, vi = es$vi, fits = fits)
  # metafor's default convergence settings, for the iterative estimators.
  defaults <- list()
  for (method in c("ML", "REML", "EB", "PM")) {
    res <- suppressWarnings(rma(yi, vi, data = es, method = method))
    defaults[[method]] <- list(estimate = as.numeric(res$beta), tau2 = res$tau2)
  }
  reference$defaults[[case$id]] <- defaults
}

for (mr in metareg_cases) {
  case <- Filter(function(x) x$id == mr$id, cases)[[1]]
  es <- cbind(effects(case), data[[case$file]][, mr$mods, drop = FALSE])
  fits <- list()
  for (method in methods) for (test in tests) {
    fits[[paste(method, test, sep = "_")]] <- summarise_metareg(es, mr$mods, method, test)
  }
  reference$metareg[[mr$id]] <- list(mods = I(mr$mods), fits = fits)
}

writeLines(to_json(reference), file.path("tests", "data", "metafor_reference.json"))
cat("wrote tests/data/metafor_reference.json\n")
