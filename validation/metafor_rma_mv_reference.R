# Reference numbers for tests/test_rma_mv_alignment.py: multilevel models (metafor's rma.mv
# with nested random effects), their profile-likelihood CIs and CR2 cluster-robust inference.
#
# Run from the repository root:  Rscript validation/metafor_rma_mv_reference.R
# Needs R >= 4.2 with metafor and clubSandwich
# (Debian: apt-get install r-base-core r-cran-metafor r-cran-clubsandwich).
#
# What it writes:
#   tests/data/metafor/<name>_mv.csv         the input data (yi, vi, the two grouping columns,
#                                            moderators), in the columns `mscatlas meta` reads
#   tests/data/metafor_rma_mv_reference.json every number the alignment tests compare
#
# As in metafor_reference.R the models are fitted from the CSV files as read back, so R and
# Python start from the same bytes. rma.mv's default optimiser (nlminb, relative tolerance
# 1e-10) is tightened to 1e-15 and the profile-likelihood search (uniroot, tolerance 1.2e-4)
# to 1e-12, so the references are the exact optima and roots.

suppressPackageStartupMessages({
  library(metafor)
  library(clubSandwich)
})

out_dir <- file.path("tests", "data", "metafor")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

source(file.path("validation", "json17.R"))  # write_csv17, to_json

# --- input data -------------------------------------------------------------------------
# Konstantopoulos (2011): 56 studies of school calendars in 11 districts (schools in districts).
konst <- with(dat.konstantopoulos2011, data.frame(district = district, school = school,
                                                  year = year, yi = yi, vi = vi))
# Assink & Wibbelink (2016): 100 effect sizes in 17 studies (effect sizes within studies).
assink <- with(dat.assink2016, data.frame(study = study, esid = esid, year = year,
                                          deltype = as.character(deltype), yi = yi, vi = vi))
# Bornmann et al. (2007): 66 log odds ratios of grant success for women vs men in 21 studies.
born_es <- escalc(measure = "OR", ai = waward, n1i = wtotal, ci = maward, n2i = mtotal,
                  data = dat.bornmann2007)
born <- data.frame(study = as.character(dat.bornmann2007$study), obs = dat.bornmann2007$obs,
                   type = as.character(dat.bornmann2007$type),
                   yi = as.numeric(born_es$yi), vi = as.numeric(born_es$vi))

files <- list(konstantopoulos2011 = konst, assink2016 = assink, bornmann2007 = born)
for (name in names(files)) write_csv17(files[[name]], file.path(out_dir, paste0(name, "_mv.csv")))
data <- lapply(names(files), function(name) {
  read.csv(file.path(out_dir, paste0(name, "_mv.csv")), stringsAsFactors = FALSE)
})
names(data) <- names(files)

cases <- list(
  list(id = "konstantopoulos2011", outer = "district", inner = "school", mods = character(0)),
  list(id = "konstantopoulos2011", outer = "district", inner = "school", mods = c("year")),
  list(id = "assink2016", outer = "study", inner = "esid", mods = character(0)),
  list(id = "assink2016", outer = "study", inner = "esid", mods = c("deltype", "year")),
  list(id = "bornmann2007", outer = "study", inner = "obs", mods = character(0)),
  list(id = "bornmann2007", outer = "study", inner = "obs", mods = c("type"))
)
methods <- c("REML", "ML")
tight <- list(rel.tol = 1e-15, iter.max = 10000, eval.max = 10000)

# confint refits the model at each trial value with the fit's own control settings; nlminb
# may refuse the tightest tolerance at some of them. confint then warns, or, where the refit
# at the end of the search range fails, moves that end inwards (by a tenth of the distance
# to the estimate) and may report the moved end as the bound, marked with "<" or ">" in
# lb.sign/ub.sign: not a root of the profile. Either way the tolerance is relaxed tenfold
# and the interval computed again, until both bounds are genuine.
profile_ci <- function(res, component) {
  rel_tol <- res$control$rel.tol
  repeat {
    res$control$rel.tol <- rel_tol
    ci <- tryCatch(confint(res, sigma2 = component, control = list(tol = 1e-12)),
                   warning = function(w) NULL)
    if (!is.null(ci) && ci$lb.sign == "" && ci$ub.sign == "") {
      return(c(ci$random[1, "ci.lb"], ci$random[1, "ci.ub"], rel_tol))
    }
    rel_tol <- rel_tol * 10
    if (rel_tol > 1e-8) stop("no profile-likelihood CI for sigma2 component ", component)
  }
}

fit_case <- function(case, method) {
  d <- data[[case$id]]
  d$outer_ <- d[[case$outer]]
  d$inner_ <- d[[case$inner]]
  # Text moderators become R factors (indicators against the first level in sorted order),
  # as `mscatlas meta --mods` codes them.
  mods <- if (length(case$mods)) {
    as.formula(paste("~", paste(case$mods, collapse = " + ")))
  } else {
    ~ 1
  }
  # Start at the tightest tolerance and relax it tenfold at a time until nlminb reports
  # convergence (it refuses a relative tolerance it cannot reach in double precision).
  control <- tight
  repeat {
    res <- tryCatch(rma.mv(yi, vi, mods = mods, random = ~ 1 | outer_ / inner_, data = d,
                           method = method, control = control), error = function(e) NULL)
    if (!is.null(res)) break
    control$rel.tol <- control$rel.tol * 10
  }
  ci1 <- profile_ci(res, 1)
  ci2 <- profile_ci(res, 2)
  rob <- robust(res, cluster = d$outer_, clubSandwich = TRUE)
  # Multilevel I^2 as metafor's FAQ computes it (rma.mv does not report one).
  W <- diag(1 / res$vi)
  X <- model.matrix(res)
  P <- W - W %*% X %*% solve(t(X) %*% W %*% X) %*% t(X) %*% W
  I2 <- 100 * sum(res$sigma2) / (sum(res$sigma2) + (res$k - res$p) / sum(diag(P)))
  out <- list(
    rel_tol = res$control$rel.tol,
    file = paste0(case$id, "_mv.csv"), outer = case$outer, inner = case$inner,
    mods = I(case$mods), method = method,
    names = I(rownames(res$beta)),
    beta = as.numeric(res$beta), se = res$se, zval = res$zval, pval = res$pval,
    ci_lb = res$ci.lb, ci_ub = res$ci.ub,
    sigma2 = I(res$sigma2), s_nlevels = I(res$s.nlevels),
    QE = res$QE, QE_p = res$QEp, QE_df = res$k - res$p,
    QM = res$QM, QM_p = res$QMp,
    logLik = as.numeric(logLik(res)), k = res$k, I2 = I2,
    sigma2_1_ci = I(ci1[1:2]), sigma2_1_ci_rel_tol = ci1[3],
    sigma2_2_ci = I(ci2[1:2]), sigma2_2_ci_rel_tol = ci2[3],
    robust = list(
      se = rob$se, tval = rob$zval, df = I(rob$ddf), pval = rob$pval,
      ci_lb = rob$ci.lb, ci_ub = rob$ci.ub,
      QM = rob$QM, QM_df = I(rob$QMdf), QM_p = rob$QMp,
      vcov = as.numeric(rob$vb)
    )
  )
  out
}

reference <- list(
  generated_by = "validation/metafor_rma_mv_reference.R",
  R_version = paste(R.version$major, R.version$minor, sep = "."),
  metafor_version = as.character(packageVersion("metafor")),
  clubSandwich_version = as.character(packageVersion("clubSandwich")),
  control = "rma.mv: nlminb rel.tol = 1e-15; confint: tol = 1e-12; robust: clubSandwich CR2, Satterthwaite, HTZ",
  fits = list()
)

for (case in cases) for (method in methods) {
  key <- paste(case$id, if (length(case$mods)) paste(case$mods, collapse = "+") else "intercept",
               method, sep = "_")
  reference$fits[[key]] <- fit_case(case, method)
}

writeLines(to_json(reference), file.path("tests", "data", "metafor_rma_mv_reference.json"))
cat("wrote tests/data/metafor_rma_mv_reference.json\n")
