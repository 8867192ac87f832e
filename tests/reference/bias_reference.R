# -----------------------------------------------------------------------------
# bias_reference.R -- R reference values for neutrostats' bias analysis
# (neutrostats/stats/bias.py): E-values and empirical calibration.
#
# Run from the repository root:
#     Rscript tests/reference/bias_reference.R
#
# Reads   tests/reference/data/lung.csv (write_survival_data.R), colon.csv (coxmodel_reference.R)
#         tests/reference/data/ec_controls.csv              (see below)
# Writes  tests/reference/data/ec_simulated.csv             synthetic negative controls
#         tests/reference/bias_reference.json               all reference numbers
#
# Neither EValue nor EmpiricalCalibration is a Debian package (CRAN is out of
# reach), so both methods are computed here in base R from the published
# formulas, written independently of those packages' code:
#   * E-value (VanderWeele & Ding, Ann Intern Med 2017;167:268-274):
#     E = RR + sqrt(RR (RR - 1)) for RR >= 1 (1/RR below 1), of RR/true for a
#     non-null true value; the interval's E-value is that of the limit closest
#     to the null, 1 when the interval includes it. OR and HR of a common
#     outcome are converted first (VanderWeele, Ding & Mathur, J Causal
#     Inference 2019): sqrt(OR), (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)).
#   * Empirical null (Schuemie et al., Stat Med 2014;33:209-218): ML fit of
#     log(est_i) ~ N(mu, tau^2 + se_i^2), here with nlminb on (mu, tau >= 0)
#     at rel.tol 1e-15 (EmpiricalCalibration::fitNull uses Nelder-Mead, good
#     to about 1e-4); standard errors from the analytic observed information,
#     checked against optimHess. Calibrated p-value 2 pnorm(-|y - mu| /
#     sqrt(tau^2 + se^2)); calibrated estimate and interval exp(y - mu -+ z
#     sqrt(tau^2 + se^2)) (constant-error model, Schuemie et al., PNAS
#     2018;115:2571-2577, as convertNullToErrorModel + calibrateConfidenceInterval).
#
# ec_controls.csv holds the example data sets of EmpiricalCalibration 3.1.4
# (OHDSI, Apache-2.0; data/sccs.rda, caseControl.rda, cohortMethod.rda,
# southworthReplication.rda, grahamReplication.rda): columns dataset, name,
# true_log_rr (0 for negative controls, NA for the estimate of interest,
# log of the injected effect for positive controls), log_rr, se_log_rr. It
# was extracted once with the block at the end of this script (set EC_RDA_DIR
# to a folder with those .rda files to redo it).
#
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-jsonlite.
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/bias_reference.R"
OUT_JSON    <- "tests/reference/bias_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/bias_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)
RNGkind("Mersenne-Twister", "Inversion", "Rejection")

num <- function(x) {
  x <- as.numeric(x)
  out <- as.list(x)
  for (i in seq_along(x)) {
    if (is.na(x[i]) && !is.nan(x[i])) out[[i]] <- "NA"
    else if (is.nan(x[i])) out[[i]] <- "NaN"
    else if (is.infinite(x[i])) out[[i]] <- if (x[i] > 0) "Inf" else "-Inf"
  }
  if (length(out) == 1) out[[1]] else out
}

# --- optional: extract EmpiricalCalibration's data sets ------------------------
rda_dir <- Sys.getenv("EC_RDA_DIR")
if (nzchar(rda_dir)) {
  rows <- list()
  for (ds in c("sccs", "caseControl", "cohortMethod")) {
    e <- new.env(); load(file.path(rda_dir, paste0(ds, ".rda")), envir = e); x <- get(ds, e)
    rows[[ds]] <- data.frame(dataset = ds, name = x$drugName,
                             true_log_rr = ifelse(x$groundTruth == 0, 0, NA), log_rr = x$logRr, se_log_rr = x$seLogRr)
  }
  for (ds in c("southworthReplication", "grahamReplication")) {
    e <- new.env(); load(file.path(rda_dir, paste0(ds, ".rda")), envir = e); x <- get(ds, e)
    rows[[ds]] <- data.frame(dataset = ds, name = x$outcomeName, true_log_rr = x$trueLogRr,
                             log_rr = x$logRr, se_log_rr = x$seLogRr)
  }
  write.csv(do.call(rbind, rows), file.path(DATA_DIR, "ec_controls.csv"), row.names = FALSE)
}

# --- E-values ------------------------------------------------------------------
to_rr <- function(x, measure, rare) {
  if (measure == "RR" || rare) return(x)
  if (measure == "OR") return(sqrt(x))
  (1 - 0.5^sqrt(x)) / (1 - 0.5^sqrt(1 / x))
}
e_of <- function(rr, true) {
  r <- ifelse(rr < true, true / rr, rr / true)
  r + sqrt(r * (r - 1))
}
evalue_case <- function(id, est, lo, hi, measure, rare, true = 1) {
  rr <- to_rr(est, measure, rare); rlo <- to_rr(lo, measure, rare); rhi <- to_rr(hi, measure, rare)
  t <- to_rr(true, measure, rare)
  e <- e_of(rr, t)
  if (rr == t) eci <- 1
  else if (rr > t) eci <- if (is.na(rlo)) NA else if (rlo <= t) 1 else e_of(rlo, t)
  else eci <- if (is.na(rhi)) NA else if (rhi >= t) 1 else e_of(rhi, t)
  list(id = id, estimate = num(est), conf_low = num(lo), conf_high = num(hi), measure = measure,
       rare = rare, true = num(true), rr = num(rr), evalue = num(e), evalue_ci = num(eci))
}
ev <- list(
  evalue_case("hammond_horn_rr", 10.73, 8.02, 14.36, "RR", TRUE),
  evalue_case("victora_or_rare", 3.9, 1.8, 8.7, "OR", TRUE),
  evalue_case("ip_leukemia_rr", 0.80, 0.71, 0.91, "RR", TRUE),
  evalue_case("hr_common_protective", 0.56, 0.46, 0.69, "HR", FALSE),
  evalue_case("or_common_protective", 0.86, 0.75, 0.99, "OR", FALSE),
  evalue_case("rr_nonnull_true", 2.5, NA, NA, "RR", TRUE, 1.5),
  evalue_case("or_common_harmful", 2.63, 1.85, 3.65, "OR", FALSE),
  evalue_case("hr_common_harmful", 38.77, 26.22, 57.33, "HR", FALSE),
  evalue_case("hr_rare_harmful", 1.85, 1.28, 2.66, "HR", TRUE),
  evalue_case("rr_ci_crosses", 1.25, 0.97, 1.62, "RR", TRUE),
  evalue_case("or_common_crosses_protective", 0.72, 0.17, 1.89, "OR", FALSE),
  evalue_case("hr_common_nonnull_true", 2.0, 1.5, 2.7, "HR", FALSE, 1.2),
  evalue_case("rr_below_nonnull_true", 0.9, 0.8, 1.05, "RR", TRUE, 1.1),
  evalue_case("rr_null", 1.0, 0.8, 1.25, "RR", TRUE)
)

# Real data: hazard ratios of coxph on lung (death is common: rare = FALSE)
# and odds ratios of glm on colon (recurrence, etype 1: common).
lung <- read.csv(file.path(DATA_DIR, "lung.csv"))
lung <- lung[complete.cases(lung[, c("time", "status", "age", "sex", "ph.ecog")]), ]
cf <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lung, ties = "efron")
sc <- summary(cf)$conf.int
lung_rows <- lapply(rownames(sc), function(term) {
  evalue_case(term, sc[term, "exp(coef)"], sc[term, "lower .95"], sc[term, "upper .95"], "HR", FALSE)
})
colon <- read.csv(file.path(DATA_DIR, "colon.csv"))
colon <- colon[colon$etype == 1, ]
colon$rx <- factor(colon$rx, levels = c("Obs", "Lev", "Lev+5FU"))
gf <- glm(status ~ rx + age + sex, family = binomial, data = colon, control = glm.control(epsilon = 1e-12))
co <- summary(gf)$coefficients
colon_rows <- lapply(c("rxLev", "rxLev+5FU", "age", "sex"), function(term) {
  b <- co[term, "Estimate"]; s <- co[term, "Std. Error"]; z <- qnorm(0.975)
  r <- evalue_case(term, exp(b), exp(b - z * s), exp(b + z * s), "OR", FALSE)
  r$std_error <- num(s)
  r
})

# --- empirical null ------------------------------------------------------------
negll <- function(p, ly, sl) {   # (argument names that nlminb/optimHess do not partially match)
  v <- p[2]^2 + sl^2
  0.5 * sum(log(2 * pi * v) + (ly - p[1])^2 / v)
}
info <- function(mu, tau, y, s) {
  v <- tau^2 + s^2; r <- y - mu
  g <- r^2 / v^2 - 1 / v
  h_mm <- -sum(1 / v); h_mt <- -sum(2 * tau * r / v^2)
  h_tt <- sum(g + 2 * tau^2 * (1 / v^2 - 2 * r^2 / v^3))
  -matrix(c(h_mm, h_mt, h_mt, h_tt), 2)
}
fit_null <- function(y, s) {
  best <- NULL
  for (t0 in c(0.01, 0.1, 0.5, 1)) {   # several starts: keep the best optimum
    f <- nlminb(c(mean(y), t0), negll, ly = y, sl = s, lower = c(-Inf, 0),
                control = list(rel.tol = 1e-15, x.tol = 1e-15, eval.max = 5000, iter.max = 5000))
    if (is.null(best) || f$objective < best$objective) best <- f
  }
  mu <- best$par[1]; tau <- best$par[2]
  if (tau < 1e-7) {   # boundary: tau = 0, mu the inverse-variance mean
    tau <- 0; mu <- sum(y / s^2) / sum(1 / s^2)
    se <- c(1 / sqrt(sum(1 / s^2)), NA)
  } else {
    I <- info(mu, tau, y, s)
    Inum <- optimHess(c(mu, tau), negll, ly = y, sl = s, control = list(ndeps = c(1e-5, 1e-5)))
    stopifnot(max(abs(I - Inum) / max(abs(I))) < 1e-5)
    se <- sqrt(diag(solve(I)))
  }
  list(mu = mu, tau = tau, se = se, loglik = -negll(c(mu, tau), ly = y, sl = s))
}
calib <- function(y, s, nf, level) {
  sd <- sqrt(nf$tau^2 + s^2); z <- qnorm(0.5 + level / 2)
  list(calibrated_estimate = num(exp(y - nf$mu)), calibrated_std_error = num(sd),
       calibrated_conf_low = num(exp(y - nf$mu - z * sd)), calibrated_conf_high = num(exp(y - nf$mu + z * sd)),
       calibrated_p_value = num(2 * pnorm(-abs(y - nf$mu) / sd)))
}

set.seed(20250219)
sim <- rbind(
  data.frame(dataset = "sim_biased", name = paste0("nc", 1:25), true_log_rr = 0,
             se_log_rr = round(runif(25, 0.05, 0.5), 6)),
  data.frame(dataset = "sim_boundary", name = paste0("nc", 1:8), true_log_rr = 0,
             se_log_rr = round(runif(8, 0.2, 0.4), 6))
)
n1 <- 25
sim$log_rr <- c(round(rnorm(n1, 0.3, 0.2) + rnorm(n1, 0, sim$se_log_rr[1:n1]), 6),
                round(rnorm(8, -0.1, sim$se_log_rr[-(1:n1)] * 0.4), 6))   # less spread than the SEs: tau = 0
sim <- sim[, c("dataset", "name", "true_log_rr", "log_rr", "se_log_rr")]
write.csv(sim, file.path(DATA_DIR, "ec_simulated.csv"), row.names = FALSE)
sim <- read.csv(file.path(DATA_DIR, "ec_simulated.csv"))
ec <- read.csv(file.path(DATA_DIR, "ec_controls.csv"))
doc <- data.frame(dataset = "docstring", name = paste0("nc", 1:10), true_log_rr = 0,
                  log_rr = log(c(1.2, 2.0, 0.8, 1.5, 1.1, 2.5, 1.3, 0.9, 1.7, 1.25)),
                  se_log_rr = c(0.1, 0.2, 0.15, 0.1, 0.3, 0.2, 0.1, 0.25, 0.2, 0.1))
all <- rbind(ec, sim, doc)

nulls <- list()
for (ds in unique(all$dataset)) {
  d <- all[all$dataset == ds, ]
  neg <- d[!is.na(d$true_log_rr) & d$true_log_rr == 0, ]
  nf <- fit_null(neg$log_rr, neg$se_log_rr)
  nulls[[ds]] <- list(
    dataset = ds, n_controls = nrow(neg), mu = num(nf$mu), tau = num(nf$tau),
    mu_std_error = num(nf$se[1]), tau_std_error = num(nf$se[2]), log_likelihood = num(nf$loglik),
    rows = list(name = d$name, true_log_rr = num(d$true_log_rr), log_rr = num(d$log_rr), se_log_rr = num(d$se_log_rr)),
    calibrated_95 = calib(d$log_rr, d$se_log_rr, nf, 0.95),
    calibrated_90 = calib(d$log_rr, d$se_log_rr, nf, 0.90)
  )
}

header <- list(
  r_version = R.version.string, survival = as.character(packageVersion("survival")),
  jsonlite = as.character(packageVersion("jsonlite")), script = SCRIPT_PATH, regenerate = REGEN_CMD,
  conventions = paste(
    "evalues: rr is the estimate on the risk-ratio scale; evalue of the point estimate, evalue_ci of the limit",
    "closest to true (1 if the CI includes it, NA without a limit). lung: coxph(Surv(time, status) ~ age + sex +",
    "ph.ecog) complete cases, HR with summary() 95% CI, rare = FALSE. colon: etype 1, glm(status ~ rx + age + sex,",
    "binomial, epsilon 1e-12), Wald 95% CI, rare = FALSE. nulls: per dataset, ML fit on its rows with",
    "true_log_rr == 0; calibrated_* for every row of the dataset (estimate of interest, positive and negative",
    "controls) at 95% and 90%; tau_std_error NA when tau is on the boundary 0.")
)
out <- list(header = header, evalues = ev, lung_cox = lung_rows, colon_glm = colon_rows, nulls = unname(nulls))
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE, na = "string"), OUT_JSON)
cat("wrote", OUT_JSON, "\n")
