# -----------------------------------------------------------------------------
# or_reference.R -- R reference values ("fixtures") for neutrostats' odds-ratio
# code (neutrostats/associations.py).
#
# Run from the repository root:
#     Rscript tests/reference/or_reference.R
#
# Writes
#     tests/reference/or_reference.json   all reference numbers
#     tests/reference/data/<id>.csv       the simulated individual-level data
#                                         sets used by the regression fixtures
#
# The outputs are committed, so the Python test-suite (and CI) never needs R.
# Everything is deterministic: hard-coded tables, and simulated data drawn
# with a fixed RNG kind + seed.  The regression models are fitted on the data
# *read back from the CSV files*, so Python and R see bit-identical input.
#
# Packages (Debian bookworm): r-base-core r-cran-epitools r-cran-brglm2
# r-cran-jsonlite.  logistf and DescTools are NOT packaged in Debian bookworm,
# so (i) Firth profile-penalised-likelihood intervals / tests are computed by a
# small hand implementation of logistf's definition (validated against
# brglm2's point estimates below), and (ii) the Breslow-Day test is
# implemented by hand (validated against the published SAS "Migraine" value).
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(epitools)
  library(brglm2)
  library(jsonlite)
  library(splines)
})

SCRIPT_PATH <- "tests/reference/or_reference.R"
OUT_JSON    <- "tests/reference/or_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/or_reference.R"

if (!file.exists(SCRIPT_PATH)) {
  stop("run this script from the repository root: ", REGEN_CMD)
}
dir.create(DATA_DIR, showWarnings = FALSE, recursive = TRUE)

# A failed computation is recorded as NA (written as the string "NA"), and the
# error message is kept in header$notes.
notes <- list()

# =============================================================================
# A. Single 2x2 tables
# =============================================================================
# Cell convention used throughout the JSON:
#   a = exposed_events     b = exposed_nonevents
#   c = unexposed_events   d = unexposed_nonevents
#   OR (exposed vs unexposed) = a*d / (b*c)
#
# epitools expects rows = (reference/unexposed, exposed) and
# columns = (nonevent, event); it reports the OR of row 2 vs row 1.
epitools_matrix <- function(a, b, c, d) {
  x <- matrix(c(d, b, c, a), nrow = 2)   # col 1 = nonevents, col 2 = events
  dimnames(x) <- list(exposure = c("unexposed", "exposed"),
                      outcome  = c("nonevent", "event"))
  x
}

# Wald on log(OR); p from the two-sided z test of log(OR) = 0:
#   p = 2 * pnorm(-|log(OR)| / sqrt(1/a + 1/b + 1/c + 1/d))
wald_p <- function(a, b, c, d) {
  or <- (a * d) / (b * c)
  2 * pnorm(-abs(log(or) / sqrt(1 / a + 1 / b + 1 / c + 1 / d)))
}

# Haldane-Anscombe: add 0.5 to every cell, then the plain Wald formulas.
haldane <- function(a, b, c, d, conf_level) {
  a <- a + 0.5; b <- b + 0.5; c <- c + 0.5; d <- d + 0.5
  or <- (a * d) / (b * c)
  se <- sqrt(1 / a + 1 / b + 1 / c + 1 / d)
  z  <- qnorm(0.5 * (1 + conf_level))
  list(estimate = or,
       conf_low  = exp(log(or) - z * se),
       conf_high = exp(log(or) + z * se),
       p_value   = 2 * pnorm(-abs(log(or) / se)))
}

# --- high-precision conditional (Fisher) and mid-p computations -------------
# fisher.test() and epitools' or.midp() locate the conditional MLE, the
# median-unbiased estimate and the CI bounds with uniroot() at its default
# tolerance (~1.2e-4 absolute, on a 0..1 or 0..1000 scale), so those published
# values carry errors up to ~1e-4 relative near OR = 1 and considerably more
# for large ORs.  The same quantities are therefore also computed here with
# uniroot(tol = 1e-12) on the log-OR scale ("exact_precise", "midp_precise").
# They are definitionally identical to fisher.test / epitools and are checked
# against them below.
nc_hyper <- function(a, b, c, d) {
  m <- a + b            # exposed total (row 1)
  n <- c + d            # unexposed total
  k <- a + c            # events total
  lo <- max(0, k - n); hi <- min(k, m)
  support <- lo:hi
  logdc <- dhyper(support, m, n, k, log = TRUE)
  dens <- function(log_or) {
    l <- logdc + log_or * support
    p <- exp(l - max(l)); p / sum(p)
  }
  list(x = a, lo = lo, hi = hi, support = support, dens = dens)
}
# Root of f on the log-OR scale, bracketing outward from 0.
root_log <- function(f) {
  lo <- -1; hi <- 1
  while (f(lo) > 0 && lo > -60) lo <- lo * 2
  while (f(hi) < 0 && hi < 60) hi <- hi * 2
  exp(uniroot(f, c(lo, hi), tol = 1e-12, maxiter = 10000)$root)
}
exact_precise <- function(a, b, c, d, conf_level) {
  h <- nc_hyper(a, b, c, d); alpha <- (1 - conf_level) / 2
  mean_at   <- function(t) sum(h$support * h$dens(t))
  p_le      <- function(t) sum(h$dens(t)[h$support <= h$x])   # P(X <= x)
  p_ge      <- function(t) sum(h$dens(t)[h$support >= h$x])   # P(X >= x)
  est <- if (h$x == h$lo) 0 else if (h$x == h$hi) Inf else
    root_log(function(t) mean_at(t) - h$x)
  low <- if (h$x == h$lo) 0 else root_log(function(t) p_ge(t) - alpha)
  upp <- if (h$x == h$hi) Inf else root_log(function(t) alpha - p_le(t))
  list(estimate = est, conf_low = low, conf_high = upp,
       p_value = fisher.test(matrix(c(a, c, b, d), 2))$p.value)
}
midp_precise <- function(a, b, c, d, conf_level) {
  h <- nc_hyper(a, b, c, d); alpha <- (1 - conf_level) / 2
  # mid-p "less" and "greater" tail probabilities at log-OR t
  lt <- function(t) { p <- h$dens(t); sum(p[h$support < h$x]) + 0.5 * p[h$support == h$x] }
  gt <- function(t) { p <- h$dens(t); sum(p[h$support > h$x]) + 0.5 * p[h$support == h$x] }
  # median-unbiased estimate: lt = gt (= 0.5 each)
  est <- if (h$x == h$lo) 0 else if (h$x == h$hi) Inf else
    root_log(function(t) gt(t) - lt(t))
  low <- if (h$x == h$lo) 0 else root_log(function(t) gt(t) - alpha)
  upp <- if (h$x == h$hi) Inf else root_log(function(t) alpha - lt(t))
  # two-sided mid-p = 2 * min(one-sided mid-p values).  Both tails are summed
  # directly: epitools computes the upper one as 1 - lower, which cancels to
  # exactly 0 for very strong associations.
  list(estimate = est, conf_low = low, conf_high = upp,
       p_value = min(1, 2 * min(lt(0), gt(0))))
}

two_by_two_case <- function(id, a, b, c, d, conf_level = 0.95, comment = NULL) {
  x <- epitools_matrix(a, b, c, d)
  msr <- function(res) {   # exposed row of an epitools result
    list(estimate  = unname(res$measure["exposed", "estimate"]),
         conf_low  = unname(res$measure["exposed", "lower"]),
         conf_high = unname(res$measure["exposed", "upper"]))
  }
  na_method <- list(estimate = NA_real_, conf_low = NA_real_,
                    conf_high = NA_real_, p_value = NA_real_)
  # epitools always runs chisq.test() as well (its p-value is not used here),
  # which warns about small expected counts; those warnings are silenced.
  guard <- function(expr, what) tryCatch(suppressWarnings(expr), error = function(e) {
    notes[[length(notes) + 1]] <<- paste0("two_by_two/", id, "/", what,
                                          ": ", conditionMessage(e))
    na_method
  })

  wald <- guard({
    r <- oddsratio.wald(x, conf.level = conf_level, correction = FALSE)
    c(msr(r), p_value = wald_p(a, b, c, d))
  }, "wald")

  hal <- haldane(a, b, c, d, conf_level)

  exact <- guard({
    r <- oddsratio.fisher(x, conf.level = conf_level)
    c(msr(r), p_value = fisher.test(x)$p.value)
  }, "exact")

  midp <- guard({
    r <- oddsratio.midp(x, conf.level = conf_level)
    c(msr(r), p_value = unname(r$p.value["exposed", "midp.exact"]))
  }, "midp")

  # epitools' correction=TRUE only switches the chi-square p-value to Yates'
  # continuity correction; the OR and CI are NOT computed with +0.5 cells.
  wald_corr <- guard(msr(oddsratio.wald(x, conf.level = conf_level,
                                        correction = TRUE)), "wald_corr")

  out <- list(id = id, conf_level = conf_level,
              exposed_events = a, exposed_nonevents = b,
              unexposed_events = c, unexposed_nonevents = d,
              wald = wald, wald_haldane = hal, exact = exact, midp = midp,
              exact_precise = exact_precise(a, b, c, d, conf_level),
              midp_precise  = midp_precise(a, b, c, d, conf_level),
              epitools_wald_correction_true = wald_corr)
  if (!is.null(comment)) out$comment <- comment
  out
}

# Orientation check: 90/10 events among exposed vs 10/90 among unexposed must
# give OR = (90*90)/(10*10) = 81 (> 1) from every epitools routine.
local({
  x <- epitools_matrix(90, 10, 10, 90)
  stopifnot(abs(oddsratio.wald(x)$measure["exposed", "estimate"] - 81) < 1e-12)
  stopifnot(oddsratio.fisher(x)$measure["exposed", "estimate"] > 1)
  stopifnot(oddsratio.midp(x)$measure["exposed", "estimate"] > 1)
  # asymmetric check, OR = (30*85)/(70*15) = 2.428571...
  x <- epitools_matrix(30, 70, 15, 85)
  stopifnot(abs(oddsratio.wald(x)$measure["exposed", "estimate"] -
                  (30 * 85) / (70 * 15)) < 1e-12)
})

tables <- list(
  # id, a (exp ev), b (exp nonev), c (unexp ev), d (unexp nonev), conf, comment
  list("orientation_obvious", 90, 10, 10, 90, 0.95,
       "OR must be (90*90)/(10*10) = 81: fixes the orientation"),
  list("ordinary_harmful", 30, 70, 15, 85, 0.95, NULL),
  list("ordinary_protective", 12, 188, 25, 175, 0.95, NULL),
  list("null_or_one", 20, 80, 20, 80, 0.95, "OR exactly 1"),
  list("small_cells", 2, 8, 1, 30, 0.95, NULL),
  list("zero_exposed_events", 0, 20, 5, 45, 0.95, "a = 0: OR = 0"),
  list("zero_exposed_nonevents", 10, 0, 5, 45, 0.95, "b = 0: OR = Inf"),
  list("zero_unexposed_events", 6, 24, 0, 50, 0.95, "c = 0: OR = Inf"),
  list("zero_unexposed_nonevents", 6, 24, 10, 0, 0.95, "d = 0: OR = 0"),
  list("two_zero_diagonal", 0, 10, 8, 0, 0.95, "a = d = 0: OR = 0"),
  list("two_zero_offdiagonal", 7, 0, 0, 9, 0.95, "b = c = 0: OR = Inf"),
  list("two_zero_no_events", 0, 12, 0, 30, 0.95,
       "a = c = 0 (no events at all): OR = 0/0 undefined; Haldane defined"),
  list("tiny_tier_n3", 1, 2, 40, 960, 0.95, "exposed n = 3"),
  list("tiny_tier_n3_zero", 0, 3, 40, 960, 0.95, "exposed n = 3, no events"),
  list("tiny_tier_n3_all", 3, 0, 40, 960, 0.95, "exposed n = 3, all events"),
  list("large", 1500, 98500, 2100, 371000, 0.95, NULL),
  # Andersen-like sizes (synthetic counts): a cohort of ~370,000 with
  # normal 96 %, subnormal 2 %, mild 1.5 %, moderate/severe 0.5 %; each
  # neutropenia tier compared with the normal tier.
  list("andersen_like_subnormal", 260, 7140, 10000, 345200, 0.95,
       "synthetic, Andersen-like tier sizes: subnormal vs normal"),
  list("andersen_like_mild", 230, 5320, 10000, 345200, 0.95,
       "synthetic, Andersen-like tier sizes: mild vs normal"),
  list("andersen_like_moderate_severe", 95, 1755, 10000, 345200, 0.95,
       "synthetic, Andersen-like tier sizes: moderate/severe vs normal"),
  list("ordinary_harmful_conf90", 30, 70, 15, 85, 0.90, "conf_level 0.90"),
  list("small_cells_conf90", 2, 8, 1, 30, 0.90, "conf_level 0.90"),
  list("zero_exposed_events_conf90", 0, 20, 5, 45, 0.90, "conf_level 0.90")
)
two_by_two <- lapply(tables, function(t)
  two_by_two_case(t[[1]], t[[2]], t[[3]], t[[4]], t[[5]], t[[6]], t[[7]]))

# Cross-checks: (i) the precise values agree with fisher.test / epitools up to
# the (coarse) tolerance of their uniroot() calls; (ii) epitools'
# correction=TRUE returns exactly the correction=FALSE OR and CI, so it is not
# the Haldane +0.5 estimate (the flag is TRUE only if, for every table, the
# correction=TRUE triple equals the by-hand Haldane triple).
triple <- function(m) unlist(m[c("estimate", "conf_low", "conf_high")])
haldane_equals_epitools_correction <- all(vapply(two_by_two, function(cs)
  isTRUE(all.equal(triple(cs$epitools_wald_correction_true),
                   triple(cs$wald_haldane))), logical(1)))
stopifnot(!haldane_equals_epitools_correction)
for (cs in two_by_two) {
  for (m in c("exact", "midp")) {
    ref <- cs[[m]]; pre <- cs[[paste0(m, "_precise")]]
    for (k in c("estimate", "conf_low", "conf_high")) {
      r <- ref[[k]]; p <- pre[[k]]
      if (is.na(r)) next
      ok <- (is.infinite(r) && identical(r, p)) ||
            (is.finite(r) && is.finite(p) &&
             abs(log(max(r, 1e-300)) - log(max(p, 1e-300))) < 2e-2) ||
            (r == 0 && p == 0)
      if (!ok) stop(sprintf("%s %s %s: packaged %g vs precise %g",
                            cs$id, m, k, r, p))
    }
  }
  stopifnot(identical(triple(cs$epitools_wald_correction_true), triple(cs$wald)))
}

# =============================================================================
# B. Logistic regression (maximum likelihood, glm) on simulated cohorts
# =============================================================================
TIER_LEVELS <- c("normal", "subnormal", "mild", "moderate_severe")
TRUE_LOGOR  <- c(normal = 0, subnormal = 0.3, mild = 0.6, moderate_severe = 1.0)

use_seed <- function(seed) {
  RNGkind("Mersenne-Twister", "Inversion", "Rejection")
  set.seed(seed)
}

# Writes the data set and reads it straight back, so the models below are fitted
# on exactly what Python will read (age is rounded to 1 decimal for the same
# reason).  tier/sex become factors with references "normal" and "F".
write_and_reload <- function(df, id) {
  path <- file.path(DATA_DIR, paste0(id, ".csv"))
  write.csv(df[, c("y", "tier", "age", "sex")], path,
            row.names = FALSE, quote = FALSE)
  back <- read.csv(path, stringsAsFactors = FALSE)
  back$tier <- factor(back$tier, levels = TIER_LEVELS)
  back$sex  <- factor(back$sex, levels = c("F", "M"))
  stopifnot(!anyNA(back$tier), !anyNA(back$sex))
  attr(back, "csv") <- path
  back
}

# age ~ U(18, 90) rounded to 0.1 y, sex 50/50, true model
# logit P(y=1) = intercept + tier effect + 0.02 (age - 50) + 0.3 [sex = M].
simulate_cohort <- function(tier, intercept) {
  n <- length(tier)
  age <- round(runif(n, 18, 90), 1)
  sex <- ifelse(runif(n) < 0.5, "F", "M")
  lp <- intercept + TRUE_LOGOR[tier] + 0.02 * (age - 50) + 0.3 * (sex == "M")
  y <- as.integer(runif(n) < plogis(lp))
  data.frame(y = y, tier = tier, age = age, sex = sex, stringsAsFactors = FALSE)
}

# (1) balanced: n = 3000, tiers 40/25/20/15 %, moderate effects, ~25 % events.
use_seed(20240101)
d_bal <- simulate_cohort(
  sample(rep(TIER_LEVELS, times = c(1200, 750, 600, 450))), intercept = -1.5)
d_bal <- write_and_reload(d_bal, "balanced")

# (2) sparse: n = 1000; moderate_severe has exactly 15 persons and 1 event.
use_seed(20240102)
tier_sp <- sample(rep(TIER_LEVELS, times = c(700, 150, 135, 15)))
d_sp <- simulate_cohort(tier_sp, intercept = -1.5)
ms <- which(d_sp$tier == "moderate_severe")
d_sp$y[ms] <- 0L
d_sp$y[ms[1]] <- 1L                     # the single event of that tier
d_sp <- write_and_reload(d_sp, "sparse")

# (3) large: n = 100000, rare outcome (~3 %), Andersen-like tier mix
#     normal 96 %, subnormal 2 %, mild 1.5 %, moderate/severe 0.5 %.
use_seed(20240103)
d_lg <- simulate_cohort(
  sample(rep(TIER_LEVELS, times = c(96000, 2000, 1500, 500))), intercept = -3.7)
d_lg <- write_and_reload(d_lg, "large")

# (4) separation: n = 600; moderate_severe has 20 persons and 0 events
#     (quasi-complete separation for that coefficient under ML).
use_seed(20240104)
tier_sep <- sample(rep(TIER_LEVELS, times = c(400, 100, 80, 20)))
d_sep <- simulate_cohort(tier_sep, intercept = -1.2)
d_sep$y[d_sep$tier == "moderate_severe"] <- 0L
d_sep <- write_and_reload(d_sep, "separation")

# glm's default convergence test (relative deviance change < 1e-8) is
# second-order in the coefficients, and summary() takes the SEs from the IRLS
# weights of the iteration *before* the last update.  The fitted values are
# therefore ~1e-8 (coefficients) to ~4e-5 (SEs, large data set) away from the
# exact MLE.  To make the fixtures exact to ~1e-10 or better, the fit is polished
# with two more IRLS passes started at its own estimate: this is the same model
# as plain glm(), just fully converged.
fit_glm <- function(formula, data) {
  fit <- glm(formula, family = binomial, data = data)
  for (pass in 1:2)
    fit <- glm(formula, family = binomial, data = data, start = coef(fit),
               control = glm.control(epsilon = 1e-10, maxit = 50))
  stopifnot(fit$converged)
  fit
}

glm_terms <- function(fit, keep = NULL) {
  co <- summary(fit)$coefficients
  ci <- confint.default(fit)              # Wald, log-odds scale
  nm <- rownames(co)
  if (!is.null(keep)) nm <- nm[nm %in% keep]
  setNames(lapply(nm, function(t) list(
    estimate  = co[t, "Estimate"],
    std_error = co[t, "Std. Error"],
    z         = co[t, "z value"],
    p_value   = co[t, "Pr(>|z|)"],
    conf_low  = ci[t, 1],
    conf_high = ci[t, 2])), nm)
}
glm_summary <- function(fit, formula_text, keep = NULL) {
  list(formula = formula_text,
       terms = glm_terms(fit, keep),
       deviance = deviance(fit),
       null_deviance = fit$null.deviance,
       df_residual = fit$df.residual,
       converged = fit$converged)
}
data_summary <- function(d, id) {
  list(id = id, csv = attr(d, "csv"), n = nrow(d), n_events = sum(d$y),
       tier_n = as.list(table(d$tier)),
       tier_events = as.list(tapply(d$y, d$tier, sum)))
}

logistic_case <- function(d, id, spline = FALSE) {
  out <- data_summary(d, id)
  adj <- fit_glm(y ~ tier + age + sex, d)
  cru <- fit_glm(y ~ tier, d)
  out$models <- list(
    adjusted = glm_summary(adj, "y ~ tier + age + sex"),
    crude    = glm_summary(cru, "y ~ tier"))
  if (spline) {
    fit <- fit_glm(y ~ tier + splines::ns(age, df = 4) + sex, d)
    basis <- splines::ns(d$age, df = 4)
    m <- glm_summary(fit, "y ~ tier + splines::ns(age, df = 4) + sex",
                     keep = paste0("tier", TIER_LEVELS[-1]))
    # Knots are quantiles of age at 1/4, 2/4, 3/4 (R quantile type 7);
    # boundary knots are range(age).
    m$ns_knots <- I(unname(attr(basis, "knots")))
    m$ns_boundary_knots <- I(unname(attr(basis, "Boundary.knots")))
    out$models$spline_age <- m
  }
  out
}
logistic <- list(
  logistic_case(d_bal, "balanced", spline = TRUE),
  logistic_case(d_sp, "sparse"),
  logistic_case(d_lg, "large"))

# =============================================================================
# C. Firth penalised logistic regression
# =============================================================================
# Point estimates: brglm2::brglmFit with type = "AS_mean".  For a logistic
# model (canonical link) mean-bias reduction is exactly Firth's (1993)
# Jeffreys-prior penalised likelihood, i.e. logistf's estimate.
#
# brglm2's confint() method (confint.brglmFit) is simply confint.default():
# a WALD interval  beta_hat +/- z * SE, SE from the inverse expected Fisher
# information evaluated at the bias-reduced estimate.  Those are recorded as
# brglm2_conf_low/high.
#
# logistf (the preferred reference: profile penalised-likelihood CIs and
# penalised-likelihood-ratio p-values) is not packaged in Debian, so its
# definitions are implemented below (firth_fit / firth_profile), following
# Heinze & Schemper (2002) as logistf does:
#   l*(b)  = l(b) + 0.5 * log det I(b),  I(b) = X' W X (full design matrix,
#            also when a coefficient is held fixed);
#   CI     = { b_j : 2 [l*(b_hat) - max_{b: b_j fixed} l*(b)] <= qchisq(.95, 1) };
#   p      = P(chi2_1 > 2 [l*(b_hat) - max_{b: b_j = 0} l*(b)]).
# The unconstrained fit must reproduce brglm2's estimates (checked below).
# When written, this implementation was also run on logistf's own `sex2` data
# (case ~ age + oc + vic + vicl + vis + dia) and reproduced logistf's published
# coefficients and profile CIs to all 7-9 printed digits; that data set is not
# part of this repository, so the check is not repeated here.
# (brglm2 itself stops at ~1e-7 accuracy, so `estimate` is the tighter hand fit.)
pen_loglik <- function(beta, X, y) {
  eta <- drop(X %*% beta)
  p <- plogis(eta)
  w <- p * (1 - p)
  ll <- sum(y * plogis(eta, log.p = TRUE) + (1 - y) * plogis(-eta, log.p = TRUE))
  ll + 0.5 * as.numeric(determinant(crossprod(X, X * w), logarithm = TRUE)$modulus)
}
# Newton-Raphson on the Firth-modified score; coefficients in `fixed`
# (a named vector index -> value) are held constant.  Step-halving keeps l*
# increasing.
firth_fit <- function(X, y, fixed = NULL, start = NULL) {
  k <- ncol(X)
  beta <- if (is.null(start)) rep(0, k) else start
  free <- seq_len(k)
  if (!is.null(fixed)) {
    beta[fixed$j] <- fixed$value
    free <- setdiff(free, fixed$j)
  }
  ll <- pen_loglik(beta, X, y)
  for (it in 1:500) {
    p <- plogis(drop(X %*% beta)); w <- p * (1 - p)
    info <- crossprod(X, X * w)
    inv <- solve(info)
    h <- rowSums((X %*% inv) * X) * w          # hat-matrix diagonal
    score <- drop(crossprod(X, y - p + h * (0.5 - p)))
    delta <- rep(0, k)
    delta[free] <- solve(info[free, free, drop = FALSE], score[free])
    step <- 1
    repeat {
      nb <- beta + step * delta
      nll <- pen_loglik(nb, X, y)
      if (nll >= ll - 1e-12 || step < 1e-8) break
      step <- step / 2
    }
    beta <- nb; ll <- nll
    if (max(abs(step * delta)) < 1e-11 && max(abs(score[free])) < 1e-8) break
  }
  list(beta = setNames(beta, colnames(X)), loglik = ll, iter = it)
}
firth_profile <- function(X, y, level = 0.95) {
  full <- firth_fit(X, y)
  crit <- qchisq(level, 1)
  p <- plogis(drop(X %*% full$beta))
  se <- sqrt(diag(solve(crossprod(X, X * (p * (1 - p))))))
  res <- lapply(seq_len(ncol(X)), function(j) {
    prof <- function(b) {
      f <- firth_fit(X, y, fixed = list(j = j, value = b), start = full$beta)
      2 * (full$loglik - f$loglik)
    }
    g <- function(b) prof(b) - crit
    bound <- function(dir) {
      # step outward in units of the Wald SE until the profile crosses
      inner <- full$beta[j]; outer <- inner + dir * se[j]
      while (g(outer) < 0) {
        inner <- outer; outer <- outer + dir * 2 * se[j]
        if (abs(outer - full$beta[j]) > 100) return(dir * Inf)
      }
      uniroot(g, sort(c(inner, outer)), tol = 1e-10, maxiter = 1000)$root
    }
    stat0 <- prof(0)
    list(conf_low = bound(-1), conf_high = bound(1),
         p_value = pchisq(stat0, 1, lower.tail = FALSE),
         lr_statistic = stat0)
  })
  list(beta = full$beta, se = se, loglik = full$loglik,
       terms = setNames(res, colnames(X)))
}

firth_case <- function(d, id, dataset, formula) {
  br <- glm(formula, family = binomial, data = d,
            method = brglm2::brglmFit, type = "AS_mean",
            # brglm2 stops at 1e-6 by default; the tests compare at 1e-6.
            control = brglm2::brglmControl(epsilon = 1e-12, maxit = 1000))
  brs <- summary(br)$coefficients
  brci <- confint(br)                    # = confint.default: Wald
  X <- model.matrix(formula, data = d)
  hp <- firth_profile(X, d$y)
  stopifnot(identical(colnames(X), rownames(brs)))
  # The hand implementation must reproduce brglm2's Firth estimates.
  if (max(abs(hp$beta - coef(br))) > 1e-6)
    stop("Firth hand fit disagrees with brglm2 in ", id)
  terms <- setNames(lapply(colnames(X), function(t) list(
    estimate          = unname(hp$beta[t]),
    std_error         = unname(hp$se[t]),
    conf_low          = hp$terms[[t]]$conf_low,
    conf_high         = hp$terms[[t]]$conf_high,
    p_value           = hp$terms[[t]]$p_value,
    lr_statistic      = hp$terms[[t]]$lr_statistic,
    brglm2_estimate   = unname(coef(br)[t]),
    brglm2_std_error  = brs[t, "Std. Error"],
    brglm2_z          = brs[t, "z value"],
    brglm2_p_value    = brs[t, "Pr(>|z|)"],
    brglm2_conf_low   = brci[t, 1],
    brglm2_conf_high  = brci[t, 2])), colnames(X))
  list(id = id, dataset = dataset, csv = attr(d, "csv"),
       formula = deparse(formula), conf_level = 0.95,
       penalised_loglik = hp$loglik, terms = terms)
}
firth <- list(
  firth_case(d_bal, "balanced", "balanced", y ~ tier + age + sex),
  firth_case(d_sp, "sparse", "sparse", y ~ tier + age + sex),
  firth_case(d_sep, "separation", "separation", y ~ tier + age + sex),
  firth_case(d_sep, "separation_crude", "separation", y ~ tier))

# For the record: plain ML on the separation data does not converge to a
# finite value for tiermoderate_severe (|estimate| large, huge SE).
sep_ml <- suppressWarnings(glm(y ~ tier + age + sex, family = binomial, data = d_sep))
separation_ml_note <- sprintf(
  "glm (ML) on 'separation': tiermoderate_severe estimate %.2f, SE %.0f -- i.e. diverging",
  coef(sep_ml)[["tiermoderate_severe"]],
  summary(sep_ml)$coefficients["tiermoderate_severe", "Std. Error"])

# =============================================================================
# D. Mantel-Haenszel over 2 x 2 x K strata
# =============================================================================
# Each stratum is [a, b, c, d] = [exposed_events, exposed_nonevents,
# unexposed_events, unexposed_nonevents].  array() fills column-major, so
# c(a, c, b, d) gives rows (exposed, unexposed) x cols (event, nonevent) and the
# stratum OR a*d/(b*c).
mh_array <- function(strata) {
  K <- length(strata)
  array(unlist(lapply(strata, function(s) s[c(1, 3, 2, 4)])), dim = c(2, 2, K),
        dimnames = list(exposure = c("exposed", "unexposed"),
                        outcome = c("event", "nonevent"),
                        stratum = paste0("s", seq_len(K))))
}

# Breslow-Day homogeneity test (DescTools is not in Debian; same definition as
# DescTools::BreslowDayTest): with psi = the MH OR, for each stratum find the
# expected exposed-event count A_k with the observed margins and odds ratio psi,
# var_k = 1 / (1/A + 1/B + 1/C + 1/D) at the fitted cells, and
#   X2 = sum (a_k - A_k)^2 / var_k,  df = K - 1.
# Tarone's correction subtracts (sum a_k - sum A_k)^2 / sum var_k.
breslow_day <- function(arr, or = NULL, correct = FALSE) {
  if (is.null(or)) or <- unname(mantelhaen.test(arr)$estimate)
  K <- dim(arr)[3]
  a_obs <- A <- V <- numeric(K)
  for (k in seq_len(K)) {
    m <- arr[, , k]
    n1 <- sum(m[1, ]); n0 <- sum(m[2, ]); m1 <- sum(m[, 1])
    lo <- max(0, m1 - n0); hi <- min(n1, m1)
    # solve A (n0 - m1 + A) = or (n1 - A) (m1 - A) for A in [lo, hi]
    f <- function(A) A * (n0 - m1 + A) - or * (n1 - A) * (m1 - A)
    Ak <- if (lo == hi) lo else uniroot(f, c(lo, hi), tol = 1e-13)$root
    Bk <- n1 - Ak; Ck <- m1 - Ak; Dk <- n0 - m1 + Ak
    a_obs[k] <- m[1, 1]; A[k] <- Ak
    V[k] <- 1 / (1 / Ak + 1 / Bk + 1 / Ck + 1 / Dk)
  }
  stat <- sum((a_obs - A)^2 / V)
  if (correct) stat <- stat - sum(a_obs - A)^2 / sum(V)
  list(statistic = stat, df = K - 1,
       p_value = pchisq(stat, K - 1, lower.tail = FALSE))
}

# Robins-Breslow-Greenland variance of log(MH OR), computed by hand to confirm
# that mantelhaen.test's interval is the RBG interval.
rbg_ci <- function(arr, conf_level = 0.95) {
  a <- arr[1, 1, ]; b <- arr[1, 2, ]; c <- arr[2, 1, ]; d <- arr[2, 2, ]
  n <- a + b + c + d
  P <- (a + d) / n; Q <- (b + c) / n; R <- a * d / n; S <- b * c / n
  or <- sum(R) / sum(S)
  v <- sum(P * R) / (2 * sum(R)^2) + sum(P * S + Q * R) / (2 * sum(R) * sum(S)) +
       sum(Q * S) / (2 * sum(S)^2)
  z <- qnorm(0.5 * (1 + conf_level))
  c(or = or, low = or * exp(-z * sqrt(v)), high = or * exp(z * sqrt(v)))
}

# Validation of breslow_day() and the array orientation on SAS/STAT's PROC FREQ
# "Migraine" example (strata female, male; Active vs Placebo; Better vs Same),
# for which SAS reports CMH = 8.3052 and Breslow-Day chi-square 1.4929 (df 1,
# p = 0.2218).
local({
  arr <- mh_array(list(c(16, 11, 5, 20), c(12, 16, 7, 19)))
  stopifnot(abs(mantelhaen.test(arr, correct = FALSE)$statistic - 8.3052) < 5e-5)
  bd <- breslow_day(arr)
  stopifnot(abs(bd$statistic - 1.4929) < 5e-5, abs(bd$p_value - 0.2218) < 5e-5)
})

mh_case <- function(id, strata, comment = NULL) {
  arr <- mh_array(strata)
  t0 <- mantelhaen.test(arr, correct = FALSE)
  t1 <- mantelhaen.test(arr, correct = TRUE)
  rbg <- rbg_ci(arr)
  stopifnot(abs(t0$estimate - rbg[["or"]]) < 1e-12 * rbg[["or"]],
            abs(t0$conf.int[1] - rbg[["low"]]) < 1e-10 * rbg[["low"]],
            abs(t0$conf.int[2] - rbg[["high"]]) < 1e-10 * rbg[["high"]],
            identical(t0$conf.int[1:2], t1$conf.int[1:2]))
  bd0 <- breslow_day(arr, correct = FALSE)
  bd1 <- breslow_day(arr, correct = TRUE)
  out <- list(
    id = id,
    strata = lapply(strata, function(s) I(s)),
    strata_order = "[exposed_events, exposed_nonevents, unexposed_events, unexposed_nonevents]",
    conf_level = 0.95,
    estimate  = unname(t0$estimate),
    conf_low  = t0$conf.int[1],
    conf_high = t0$conf.int[2],
    uncorrected = list(statistic = unname(t0$statistic),
                       p_value = t0$p.value),
    corrected   = list(statistic = unname(t1$statistic),
                       p_value = t1$p.value),
    breslow_day = list(statistic = bd0$statistic, df = bd0$df,
                       p_value = bd0$p_value),
    breslow_day_tarone = list(statistic = bd1$statistic, df = bd1$df,
                              p_value = bd1$p_value))
  if (!is.null(comment)) out$comment <- comment
  out
}
mantel_haenszel <- list(
  mh_case("sas_migraine", list(c(16, 11, 5, 20), c(12, 16, 7, 19)),
          "SAS PROC FREQ Migraine example: CMH 8.3052, Breslow-Day 1.4929"),
  mh_case("homogeneous_3", list(c(30, 70, 15, 85), c(45, 55, 25, 75),
                                c(20, 180, 10, 190))),
  mh_case("zero_cell_stratum", list(c(8, 40, 0, 52), c(15, 35, 9, 41),
                                    c(22, 28, 14, 36)),
          "stratum 1 has unexposed_events = 0"),
  mh_case("heterogeneous", list(c(40, 10, 10, 40), c(25, 25, 25, 25),
                                c(15, 35, 40, 10)),
          "stratum ORs 16, 1, 0.107: Breslow-Day rejects homogeneity"),
  mh_case("age_sex_strata_4", list(c(12, 288, 250, 9750), c(20, 380, 410, 14590),
                                   c(9, 141, 180, 5820), c(15, 185, 300, 7700)),
          "rare outcome, small exposed groups"))

# =============================================================================
# E. Trend across ordered tiers
# =============================================================================
# prop.trend.test: Cochran-Armitage chi-square (1 df) for a linear trend in
# proportions with the given scores.  Alternative: logistic regression of the
# grouped counts on the score; Wald test of the slope.
trend_case <- function(id, events, n, scores, comment = NULL) {
  # (prop.trend.test fits an lm(); for the exactly flat case it warns about an
  # "essentially perfect fit" -- harmless, the statistic is ~0.)
  pt <- suppressWarnings(prop.trend.test(events, n, score = scores))
  fit <- fit_glm(cbind(events, n - events) ~ scores,
                 data.frame(events = events, n = n, scores = scores))
  co <- summary(fit)$coefficients
  out <- list(id = id, events = I(events), n = I(n), scores = I(scores),
              cochran_armitage = list(statistic = unname(pt$statistic),
                                      df = unname(pt$parameter),
                                      p_value = pt$p.value),
              logistic_score = list(estimate  = co["scores", "Estimate"],
                                    std_error = co["scores", "Std. Error"],
                                    z         = co["scores", "z value"],
                                    p_value   = co["scores", "Pr(>|z|)"]))
  if (!is.null(comment)) out$comment <- comment
  out
}
trend <- list(
  trend_case("increasing", c(30, 40, 55, 70), c(1000, 800, 600, 400), 0:3),
  trend_case("flat", c(50, 25, 20, 10), c(1000, 500, 400, 200), 0:3,
             "all proportions 5 %: statistic 0"),
  trend_case("unequal_scores", c(30, 40, 55, 70), c(1000, 800, 600, 400),
             c(0, 1, 3, 6)),
  trend_case("andersen_like", c(10000, 260, 230, 95),
             c(355200, 7400, 5550, 1850), 0:3,
             "synthetic, Andersen-like tier sizes"))

# =============================================================================
# Header and output
# =============================================================================
pkg_versions <- sapply(c("epitools", "brglm2", "jsonlite", "stats", "splines"),
                       function(p) as.character(packageVersion(p)), simplify = FALSE)
header <- list(
  r_version = R.version.string,
  packages = pkg_versions,
  unavailable_packages = list(
    logistf   = "not packaged in Debian bookworm: Firth profile CIs / PLR p-values computed by hand (see firth)",
    DescTools = "not packaged in Debian bookworm: Breslow-Day test implemented by hand (see mantel_haenszel)"),
  script = SCRIPT_PATH,
  regenerate = paste(
    "apt-get install -y r-base-core r-cran-epitools r-cran-brglm2 r-cran-jsonlite &&",
    REGEN_CMD, "(from the repository root)"),
  rng = "RNGkind('Mersenne-Twister', 'Inversion', 'Rejection'); set.seed() per data set",
  non_finite_encoding = "non-finite numbers are the strings \"Inf\", \"-Inf\", \"NaN\", \"NA\"",
  conventions = list(
    cells = "a = exposed_events, b = exposed_nonevents, c = unexposed_events, d = unexposed_nonevents; OR = a*d/(b*c)",
    wald_p_value = "2*pnorm(-abs(log(OR)/sqrt(1/a+1/b+1/c+1/d))) (computed in this script; epitools gives none)",
    wald_haldane = "0.5 added to all four cells, then the Wald formulas (by hand)",
    epitools_correction_true = paste(
      "NOT the Haldane correction: oddsratio.wald(correction=TRUE) returns the",
      "uncorrected a*d/(b*c) and CI; 'correction' only switches its chi-square",
      "p-value to Yates' continuity correction. Recorded as epitools_wald_correction_true."),
    haldane_equals_epitools_correction_true = haldane_equals_epitools_correction,
    exact = "epitools::oddsratio.fisher = fisher.test: conditional MLE, exact (Cornfield) CI; p_value = fisher.test two-sided",
    midp = "epitools::oddsratio.midp: median-unbiased estimate, mid-p exact CI; p_value = tab2by2.test midp.exact (2 * min one-sided mid-p)",
    precise = paste(
      "exact_precise / midp_precise: the same definitions solved with uniroot(tol=1e-12) on log(OR);",
      "fisher.test and epitools use uniroot's default tolerance (~1.2e-4 absolute on their",
      "internal scale), so their estimates/CIs can differ from the precise ones in the 4th",
      "significant digit or worse for large ORs; compare tightly against *_precise."),
    logistic = "glm(binomial); conf_low/high = confint.default (Wald, log-odds scale)",
    firth = paste(
      "estimate/std_error: Firth (= brglm2 AS_mean); conf_low/high and p_value: profile",
      "penalised likelihood (logistf definition, by hand); brglm2_conf_low/high = confint(brglm2 fit),",
      "which is confint.default, i.e. Wald with the bias-reduced estimate and its expected-information SE"),
    mantel_haenszel = "mantelhaen.test (2x2xK): MH OR, Robins-Breslow-Greenland CI (checked by hand); statistic = CMH chi-square with/without continuity correction",
    trend = "prop.trend.test (Cochran-Armitage chi-square, 1 df) and glm(cbind(events, n-events) ~ scores, binomial) Wald slope"),
  notes = c(as.list(notes), separation_ml_note)
)

result <- list(header = header, two_by_two = two_by_two, logistic = logistic,
               firth = firth, mantel_haenszel = mantel_haenszel, trend = trend)

# Encode non-finite numbers explicitly as strings.  A numeric vector that
# contains one becomes a list so the finite elements stay numbers.
encode_nonfinite <- function(x) {
  if (is.list(x)) {
    cls <- class(x)
    y <- lapply(x, encode_nonfinite)
    attributes(y) <- attributes(x)
    return(y)
  }
  if (is.numeric(x) || is.logical(x) && all(is.na(x))) {
    bad <- !is.finite(x)
    if (!any(bad)) return(x)
    s <- ifelse(is.nan(x), "NaN", ifelse(is.na(x), "NA",
                ifelse(x > 0, "Inf", "-Inf")))
    if (length(x) == 1 && !inherits(x, "AsIs")) return(s)
    y <- as.list(x); y[bad] <- as.list(s[bad])
    return(y)
  }
  x
}
result <- encode_nonfinite(result)
write_json(result, OUT_JSON, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", OUT_JSON, "and", length(list.files(DATA_DIR)), "CSV files\n")
if (length(notes)) cat("notes:\n", paste0("  ", unlist(notes), "\n"))
