# -----------------------------------------------------------------------------
# finegray_reference.R -- R reference values for neutrostats' Fine-Gray
# competing-risk regression (neutrostats/stats/finegray.py):
# cmprsk::crr, riskRegression::FGR + predictRisk, survival::finegray + coxph.
#
# Run from the repository root:
#     Rscript tests/reference/finegray_reference.R
#
# Reads   tests/reference/data/mgus2.csv, pbc.csv   (write_survival_data.R)
# Writes  tests/reference/data/fg_ties.csv    synthetic, whole-month times (heavy ties), 4 tiers, age, sex
#         tests/reference/data/fg_entry.csv   synthetic, delayed entry (entries tied with event times)
#         tests/reference/finegray_reference.json
#
# Every model is fitted on the data read back from the CSV files, so Python
# and R see identical input. Deterministic (fixed RNG kind and seeds).
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-cmprsk
# r-cran-riskregression r-cran-prodlim r-cran-jsonlite.
#
# Conventions
#   * design matrices: model.matrix(~ ...)[, -1] with treatment contrasts; the
#     tier factor has its levels in tier order (normal first = reference),
#     other factors alphabetical levels (first = reference).
#   * crr is run twice: with its default gtol = 1e-6 (what users get) and with
#     gtol = 1e-12, maxiter = 50 (fully converged; the 1e-6 comparisons use this).
#   * var = crr's fit$var (Fine & Gray's sandwich with the censoring term);
#     invinf = solve(fit$inf) (the model-based variance);
#     finegray: coxph(Surv(fgstart, fgstop, fgstatus) ~ ..., weights = fgwt,
#     ties = "breslow", cluster = id) on finegray(Surv(time, factor(event)) ~ ., etype = cause)
#     data: its coefficients, fit$naive.var (model) and fit$var (robust).
#   * predictions: predict.crr(fit, cov1 = profiles) read at `times` as
#     riskRegression's predict.FGR does (step function, 0 before the first event);
#     FGR's predictRisk is recorded as well for one case.
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(cmprsk)
  library(riskRegression)
  library(prodlim)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/finegray_reference.R"
OUT_JSON    <- "tests/reference/finegray_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/finegray_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
TIERS <- c("normal", "subnormal", "mild", "moderate_severe")

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
mat <- function(m) lapply(seq_len(nrow(m)), function(i) num(m[i, ]))

# --- synthetic data ------------------------------------------------------------
# Whole-month times (max 48): many ties among events of both kinds and censorings.
set.seed(20250119)
n <- 1500
tier <- sample(TIERS, n, replace = TRUE, prob = c(0.5, 0.25, 0.15, 0.10))
age <- round(runif(n, 20, 90), 1)
sex <- sample(c("F", "M"), n, replace = TRUE)
lp1 <- log(c(1, 1.3, 1.8, 2.5))[match(tier, TIERS)] + 0.02 * (age - 60) + 0.2 * (sex == "M")
lp2 <- log(c(1, 1.1, 1.4, 2.0))[match(tier, TIERS)] + 0.05 * (age - 60) + 0.3 * (sex == "M")
t1 <- rexp(n, 0.010 * exp(lp1))
t2 <- rexp(n, 0.012 * exp(lp2))
tc <- runif(n, 3, 60)
tt <- pmin(t1, t2, tc)
time <- pmin(ceiling(tt), 48)
event <- ifelse(ceiling(tt) > 48, 0L, ifelse(tt == t1, 1L, ifelse(tt == t2, 2L, 0L)))
write.csv(data.frame(time = time, event = event, tier = tier, age = age, sex = sex),
          file.path(DATA_DIR, "fg_ties.csv"), row.names = FALSE)

# Delayed entry: entry in whole months, only persons without an event before
# entry are observed (left truncation), entry < time; ties between entries and event times.
set.seed(20250120)
n <- 2000
tier <- sample(TIERS, n, replace = TRUE, prob = c(0.5, 0.25, 0.15, 0.10))
age <- round(runif(n, 20, 90), 1)
sex <- sample(c("F", "M"), n, replace = TRUE)
lp1 <- log(c(1, 1.4, 2.0, 3.0))[match(tier, TIERS)] + 0.02 * (age - 60) + 0.2 * (sex == "M")
lp2 <- log(c(1, 1.1, 1.3, 1.8))[match(tier, TIERS)] + 0.04 * (age - 60) + 0.3 * (sex == "M")
t1 <- ceiling(rexp(n, 0.015 * exp(lp1)))
t2 <- ceiling(rexp(n, 0.015 * exp(lp2)))
entry <- floor(runif(n, 0, 18))
tc <- entry + ceiling(runif(n, 1, 36))
tt <- pmin(t1, t2, tc)
event <- ifelse(tt == tc & tc < pmin(t1, t2), 0L, ifelse(t1 <= t2, 1L, 2L))
keep <- tt > entry
d <- data.frame(id = seq_len(n), entry = entry, time = tt, event = event, tier = tier, age = age, sex = sex)[keep, ]
d$id <- seq_len(nrow(d))
write.csv(d, file.path(DATA_DIR, "fg_entry.csv"), row.names = FALSE)

# --- read back ----------------------------------------------------------------
mgus2 <- read.csv(file.path(DATA_DIR, "mgus2.csv"))
# Progression to a plasma-cell malignancy (1) with death before it competing (2), as the survival vignette.
mgus2$etime <- ifelse(mgus2$pstat == 0, mgus2$futime, mgus2$ptime)
mgus2$event <- ifelse(mgus2$pstat == 0, 2 * mgus2$death, 1)
mgus2$sex <- factor(mgus2$sex)
pbc <- read.csv(file.path(DATA_DIR, "pbc.csv"))
pbc$sex <- factor(pbc$sex)
ties <- read.csv(file.path(DATA_DIR, "fg_ties.csv"))
ties$tier <- factor(ties$tier, levels = TIERS)
ties$sex <- factor(ties$sex)
dentry <- read.csv(file.path(DATA_DIR, "fg_entry.csv"))
dentry$tier <- factor(dentry$tier, levels = TIERS)
dentry$sex <- factor(dentry$sex)

# --- one model ------------------------------------------------------------------
finegray_cox <- function(data, time, event, rhs, cause, entry = NULL) {
  data$.id <- seq_len(nrow(data))
  data$.ev <- factor(data[[event]], levels = sort(unique(data[[event]])))
  data$.t <- data[[time]]
  lhs <- if (is.null(entry)) "Surv(.t, .ev)" else {
    data$.e <- data[[entry]]
    "Surv(.e, .t, .ev)"
  }
  fg <- finegray(as.formula(paste(lhs, "~ .")), data = data[, c(".id", ".t", ".ev", all.vars(rhs),
                                                                 if (!is.null(entry)) ".e")],
                 etype = as.character(cause), id = .id)
  fit <- coxph(as.formula(paste("Surv(fgstart, fgstop, fgstatus) ~", deparse(rhs[[2]]))), data = fg,
               weights = fgwt, ties = "breslow", cluster = .id)
  list(coef = num(coef(fit)), var_model = mat(fit$naive.var), var_robust = mat(fit$var),
       loglik = num(fit$loglik), n_rows = nrow(fg))
}

model <- function(id, data, time, event, rhs, csv, cause = 1, profiles = NULL, times = NULL, note = "",
                  fgr = FALSE, entry = NULL) {
  vars <- c(time, event, all.vars(rhs), entry)
  data <- data[complete.cases(data[, vars]), ]
  X <- model.matrix(rhs, data)[, -1, drop = FALSE]
  out <- list(id = id, csv = csv, rhs = deparse(rhs), cause = cause, note = note, n = nrow(data),
              coef_names = colnames(X))
  if (is.null(entry)) {
    f0 <- crr(data[[time]], data[[event]], X, failcode = cause)
    f <- crr(data[[time]], data[[event]], X, failcode = cause, gtol = 1e-12, maxiter = 50)
    out$crr_default <- list(coef = num(f0$coef), se = num(sqrt(diag(f0$var))), converged = f0$converged)
    out$crr <- list(coef = num(f$coef), var = mat(f$var), invinf = mat(solve(f$inf)),
                    se = num(sqrt(diag(f$var))), loglik = num(f$loglik), loglik_null = num(f$loglik.null),
                    score = num(f$score), converged = f$converged, uftime = num(f$uftime),
                    cum_baseline = num(cumsum(f$bfitj)),
                    summary = lapply(seq_along(f$coef), function(j) {
                      s <- summary(f, digits = 15)  # the default rounds the p-value to 2-3 digits
                      list(p_value = num(s$coef[j, "p-value"]), conf_low = num(s$conf.int[j, "2.5%"]),
                           conf_high = num(s$conf.int[j, "97.5%"]))
                    }))
    if (!is.null(profiles)) {
      P <- model.matrix(rhs, rbind(data[seq_len(nrow(profiles)), all.vars(rhs), drop = FALSE][0, , drop = FALSE],
                                   profiles))[, -1, drop = FALSE]
      p <- predict(f, cov1 = P)
      idx <- prodlim::sindex(jump.times = p[, 1], eval.times = times)
      cif <- rbind(0, p[, -1, drop = FALSE])[idx + 1, , drop = FALSE]  # times by profiles
      out$predict <- list(times = num(times), profiles = profiles, cif = mat(t(cif)))
    }
    if (fgr) {
      dd <- data
      dd$.t <- dd[[time]]
      dd$.ev <- dd[[event]]
      g <- FGR(as.formula(paste("Hist(.t, .ev) ~", deparse(rhs[[2]]))), data = dd, cause = cause)
      out$fgr <- list(coef = num(g$crrFit$coef), var = mat(g$crrFit$var))
      if (!is.null(profiles)) out$fgr$predict <- mat(predictRisk(g, newdata = profiles, times = times, cause = cause))
    }
  }
  out$finegray <- finegray_cox(data, time, event, rhs, cause, entry)
  out
}

prof_t <- data.frame(tier = factor(c("normal", "mild", "moderate_severe"), levels = TIERS),
                     age = c(50, 65, 80), sex = factor(c("F", "M", "M"), levels = c("F", "M")))
prof_m <- data.frame(age = c(60, 75), sex = factor(c("F", "M"), levels = c("F", "M")), hgb = c(14, 11))
M <- "tests/reference/data/mgus2.csv"
P <- "tests/reference/data/pbc.csv"
T <- "tests/reference/data/fg_ties.csv"
E <- "tests/reference/data/fg_entry.csv"
models <- list(
  model("mgus2", mgus2, "etime", "event", ~ age + sex + hgb, M, profiles = prof_m, times = c(12, 120, 240, 400),
        fgr = TRUE, note = "etime = ifelse(pstat == 0, futime, ptime); event = ifelse(pstat == 0, 2 * death, 1); complete cases of hgb"),
  model("mgus2_death", mgus2, "etime", "event", ~ age + sex, M, cause = 2,
        note = "death before progression as the cause (2), progression competing"),
  model("pbc_death", pbc, "time", "status", ~ age + log(bili) + albumin + edema, P, cause = 2,
        note = "status 0 censored, 1 transplant (competing), 2 death (the cause); log(bili) computed from bili"),
  model("pbc_transplant", pbc, "time", "status", ~ age + log(bili) + sex, P, cause = 1,
        note = "transplant (1) as the cause, death competing"),
  model("ties", ties, "time", "event", ~ tier + age + sex, T, profiles = prof_t, times = c(0.5, 1, 12, 30, 48),
        fgr = TRUE),
  model("ties_tier", ties, "time", "event", ~ tier, T),
  model("entry", dentry, "time", "event", ~ tier + age + sex, E, entry = "entry",
        note = "delayed entry: only survival::finegray(Surv(entry, time, event)) + coxph (crr has no delayed entry)")
)
names(models) <- vapply(models, function(m) m$id, "")

header <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "cmprsk", "riskRegression", "prodlim", "jsonlite"),
                    function(p) as.character(packageVersion(p)), simplify = FALSE),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-cmprsk r-cran-riskregression",
                     "r-cran-prodlim r-cran-jsonlite &&", REGEN_CMD),
  rng = "RNGkind('Mersenne-Twister', 'Inversion', 'Rejection'); set.seed(20250119) fg_ties, set.seed(20250120) fg_entry",
  non_finite_encoding = "non-finite numbers are the strings \"Inf\", \"-Inf\", \"NaN\", \"NA\"",
  conventions = list(
    design = "model.matrix(rhs, complete cases)[, -1]: treatment contrasts, tier levels normal < subnormal < mild < moderate_severe, sex F < M",
    crr = "crr(time, event, X, failcode = cause, gtol = 1e-12, maxiter = 50): coef, var (Fine-Gray sandwich), invinf = solve(inf), loglik, loglik_null, uftime, cum_baseline = cumsum(bfitj); summary(fit, digits = 15) p-values (2 * (1 - pnorm(|z|))) and 95% intervals",
    crr_default = "the same with crr's defaults (gtol = 1e-6, maxiter = 10)",
    predict = "cif[profile][time]: predict.crr(fit, cov1 = model.matrix of the profiles) at times, as predict.FGR reads it",
    fgr = "riskRegression::FGR(Hist(time, event) ~ rhs, cause = ) (calls crr with defaults): coef, var, predictRisk(newdata = profiles, times)",
    finegray = "coxph(Surv(fgstart, fgstop, fgstatus) ~ rhs, weights = fgwt, ties = 'breslow', cluster = id) on finegray(Surv([entry,] time, factor(event)) ~ ., etype = cause, id = id): coef, var_model = naive.var, var_robust = var (cluster id)"
  )
)

write_json(list(header = header, models = models), OUT_JSON, digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote", OUT_JSON, "\n")
