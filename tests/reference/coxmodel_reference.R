# -----------------------------------------------------------------------------
# coxmodel_reference.R -- R reference values for neutrostats' fitted Cox model
# (neutrostats/stats/coxmodel.py: baseline hazard, predicted survival,
# residuals, cluster-robust variance), the log-rank family
# (neutrostats/stats/survival.py logrank_test: rho/gamma weights, delayed
# entry) and robust / cluster-robust logistic variance
# (neutrostats/stats/odds_ratios.py, method="logistic", robust=/cluster=).
#
# Run from the repository root:
#     Rscript tests/reference/coxmodel_reference.R
#
# Reads   tests/reference/data/lung.csv, veteran.csv, pbc.csv, mgus2.csv,
#         cox_ties.csv, cox_entry.csv, balanced.csv   (committed)
# Writes  tests/reference/data/colon.csv      survival::colon (two rows per id)
#         tests/reference/data/lr_entry.csv   synthetic, delayed entry, no ties
#         tests/reference/coxmodel_reference.json
#
# Every model is fitted on the data read back from the CSV files. The cluster
# of the synthetic sets is defined from the file row number r (1-based):
# cl = (r - 1) %/% 3 (cox_entry, cox_ties) and (r - 1) %/% 5 (balanced).
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-sandwich
# r-cran-jsonlite. Deterministic (fixed RNG kind and seed).
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(sandwich)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/coxmodel_reference.R"
OUT_JSON    <- "tests/reference/coxmodel_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/coxmodel_reference.R (from the repository root)"
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
  out
}
rows <- function(m) { m <- as.matrix(m); lapply(seq_len(nrow(m)), function(i) num(m[i, ])) }

# --- data ---------------------------------------------------------------------
colon <- survival::colon[, c("id", "rx", "sex", "age", "nodes", "status", "time", "etype")]
write.csv(colon, file.path(DATA_DIR, "colon.csv"), row.names = FALSE, na = "")

# Delayed entry with continuous times (no tied event times): for the log-rank
# test with entry against coxph's score test (Breslow = Efron without ties).
set.seed(20261202)
n <- 400
g <- sample(c("a", "b", "c"), n, replace = TRUE)
entry <- round(runif(n, 0, 2), 6)
tt <- entry + round(rexp(n, c(a = 0.3, b = 0.45, c = 0.6)[g]), 6) + 1e-6
cens <- entry + round(runif(n, 0.5, 6), 6)
time <- pmin(tt, cens)
status <- as.integer(tt <= cens)
lr <- data.frame(entry = entry, time = time, status = status, group = g, stratum = rep(c("s1", "s2"), n / 2))
stopifnot(!anyDuplicated(lr$time), all(lr$entry < lr$time))
write.csv(lr, file.path(DATA_DIR, "lr_entry.csv"), row.names = FALSE)

lung <- read.csv(file.path(DATA_DIR, "lung.csv"))
lung <- lung[complete.cases(lung[, c("time", "status", "age", "sex", "ph.ecog")]), ]
rownames(lung) <- NULL
lung$w <- 1 + (seq_len(nrow(lung)) %% 3)
lung$wf <- 0.5 + (seq_len(nrow(lung)) %% 4) / 4
veteran <- read.csv(file.path(DATA_DIR, "veteran.csv"))
veteran$celltype <- factor(veteran$celltype)
pbc <- read.csv(file.path(DATA_DIR, "pbc.csv"))
pbc <- pbc[complete.cases(pbc[, c("time", "status", "age", "bili", "albumin", "edema", "sex")]), ]
rownames(pbc) <- NULL
pbc$dead <- as.integer(pbc$status == 2)
pbc$sex <- factor(pbc$sex)
mgus2 <- read.csv(file.path(DATA_DIR, "mgus2.csv"))
mgus2 <- mgus2[complete.cases(mgus2[, c("futime", "death", "age", "sex", "hgb")]), ]
rownames(mgus2) <- NULL
mgus2$sex <- factor(mgus2$sex)
colon <- read.csv(file.path(DATA_DIR, "colon.csv"))
colon$rx <- factor(colon$rx, levels = c("Obs", "Lev", "Lev+5FU"))
ties <- read.csv(file.path(DATA_DIR, "cox_ties.csv"))
ties$tier <- factor(ties$tier, levels = TIERS)
ties$sex <- factor(ties$sex)
ties$cl <- (seq_len(nrow(ties)) - 1) %/% 3
dentry <- read.csv(file.path(DATA_DIR, "cox_entry.csv"))
dentry$tier <- factor(dentry$tier, levels = TIERS)
dentry$sex <- factor(dentry$sex)
dentry$cl <- (seq_len(nrow(dentry)) - 1) %/% 3
lr <- read.csv(file.path(DATA_DIR, "lr_entry.csv"))

# --- Cox models -----------------------------------------------------------------
cox_case <- function(id, formula, data, ties, csv, profiles, times, weights = NULL, cluster = NULL,
                     robust = FALSE, resid = TRUE, note = "") {
  args <- list(formula = formula, data = data, ties = ties)
  if (!is.null(weights)) args$weights <- data[[weights]]
  if (!is.null(cluster)) args$cluster <- data[[cluster]]
  if (robust) args$robust <- TRUE
  fit <- do.call("coxph", args)
  s <- summary(fit)
  bh <- function(centered) {
    b <- basehaz(fit, centered = centered)
    list(time = num(b$time), hazard = num(b$hazard),
         strata = if (is.null(b$strata)) NULL else as.character(b$strata))
  }
  preds <- list()
  for (ct in c("log", "log-log", "plain")) {
    per <- list()
    for (i in seq_len(nrow(profiles))) {
      nd <- profiles[i, , drop = FALSE]
      sf <- summary(survfit(fit, newdata = nd, conf.type = ct), times = times, extend = FALSE)
      per[[i]] <- list(time = num(sf$time), surv = num(sf$surv), std_err = num(sf$std.err),
                       lower = num(sf$lower), upper = num(sf$upper), cumhaz = num(sf$cumhaz),
                       std_chaz = num(sf$std.chaz))
    }
    preds[[ct]] <- per
  }
  res <- NULL
  if (resid) {
    # Large data sets: every 10th row of the n x p residuals, and the Schoenfeld
    # residuals summed per event time (their rows are x_i - xbar(t), so the sums
    # check xbar(t) at every time); all rows for small data sets.
    sub <- if (fit$n > 500) seq(1, fit$n, by = 10) else seq_len(fit$n)
    sch <- as.matrix(residuals(fit, type = "schoenfeld"))
    ssch <- as.matrix(residuals(fit, type = "scaledsch"))
    sch_t <- as.numeric(rownames(sch))
    by_time <- function(m) rowsum(m, sch_t, reorder = TRUE)
    res <- list(
      rows = as.integer(sub),
      martingale = num(residuals(fit, type = "martingale")),
      deviance = num(residuals(fit, type = "deviance")),
      score = rows(as.matrix(residuals(fit, type = "score"))[sub, , drop = FALSE]),
      dfbeta = rows(as.matrix(residuals(fit, type = "dfbeta"))[sub, , drop = FALSE]),
      dfbetas = rows(as.matrix(residuals(fit, type = "dfbetas"))[sub, , drop = FALSE]),
      schoenfeld_full = fit$n <= 500,
      schoenfeld = rows(if (fit$n > 500) by_time(sch) else sch),
      schoenfeld_time = num(if (fit$n > 500) sort(unique(sch_t)) else sch_t),
      scaledsch = rows(if (fit$n > 500) by_time(ssch) else ssch))
  }
  list(id = id, csv = csv, formula = paste(deparse(formula), collapse = " "), ties = ties, note = note,
       weights = weights, cluster = cluster, robust = robust || !is.null(cluster),
       n = fit$n, nevent = fit$nevent, coef_names = names(coef(fit)), coef = num(coef(fit)),
       means = num(fit$means), var = rows(fit$var),
       naive_var = if (is.null(fit$naive.var)) NULL else rows(fit$naive.var),
       std_error = num(sqrt(diag(fit$var))),
       robust_score = if (is.null(fit$rscore)) NULL else num(fit$rscore),
       wald_test = num(fit$wald.test),
       p_value = num(s$coefficients[, "Pr(>|z|)"]),
       conf_low = num(s$conf.int[, "lower .95"]), conf_high = num(s$conf.int[, "upper .95"]),
       profiles = profiles, times = num(times),
       basehaz = list(uncentered = bh(FALSE), centered = bh(TRUE)),
       predict = preds, residuals = res)
}

L <- "tests/reference/data/lung.csv"
lung_prof <- data.frame(age = c(50, 70), sex = c(1, 2), ph.ecog = c(0, 2))
ties_prof <- data.frame(tier = factor(c("normal", "moderate_severe", "mild"), levels = TIERS),
                        age = c(60, 75, 40), sex = factor(c("F", "M", "F"), levels = c("F", "M")))
cox <- list(
  cox_case("lung_efron", Surv(time, status) ~ age + sex + ph.ecog, lung, "efron", L, lung_prof,
           c(0, 5, 100, 183, 365.5, 700, 1022)),
  cox_case("lung_breslow", Surv(time, status) ~ age + sex + ph.ecog, lung, "breslow", L, lung_prof,
           c(5, 100, 183, 365.5, 700)),
  cox_case("lung_weights", Surv(time, status) ~ age + sex + ph.ecog, lung, "efron", L, lung_prof,
           c(100, 365.5, 700), weights = "w", note = "w = 1 + (row %% 3) on the complete cases"),
  cox_case("lung_fweights", Surv(time, status) ~ age + sex + ph.ecog, lung, "efron", L, lung_prof,
           c(100, 365.5), weights = "wf", resid = FALSE, note = "wf = 0.5 + (row %% 4) / 4: robust by default"),
  cox_case("lung_robust", Surv(time, status) ~ age + sex + ph.ecog, lung, "efron", L, lung_prof,
           c(100, 365.5), robust = TRUE, resid = FALSE),
  cox_case("veteran", Surv(time, status) ~ trt + karno + celltype, veteran, "efron",
           "tests/reference/data/veteran.csv",
           data.frame(trt = c(1, 2), karno = c(60, 80), celltype = factor(c("squamous", "large"),
                      levels = levels(veteran$celltype))), c(10, 50, 100.5, 400), resid = FALSE),
  cox_case("veteran_strata", Surv(time, status) ~ trt + karno + strata(celltype), veteran, "efron",
           "tests/reference/data/veteran.csv",
           data.frame(trt = c(1, 2), karno = c(60, 80), celltype = c("adeno", "squamous")), c(3, 20, 50, 90)),
  cox_case("pbc", Surv(time, dead) ~ age + bili + albumin + edema + sex, pbc, "efron",
           "tests/reference/data/pbc.csv",
           data.frame(age = c(50, 60), bili = c(1, 5), albumin = c(3.5, 3), edema = c(0, 0.5),
                      sex = factor(c("f", "m"), levels = c("f", "m"))), c(400, 1000, 2000, 3500),
           note = "dead = (status == 2); complete cases of time, status, age, bili, albumin, edema, sex"),
  cox_case("mgus2", Surv(futime, death) ~ age + sex + hgb, mgus2, "breslow", "tests/reference/data/mgus2.csv",
           data.frame(age = c(65, 80), sex = factor(c("F", "M"), levels = c("F", "M")), hgb = c(13, 11)),
           c(12, 60, 120, 240), resid = FALSE, note = "complete cases of futime, death, age, sex, hgb"),
  cox_case("ties_efron", Surv(time, status) ~ tier + age + sex, ties, "efron", "tests/reference/data/cox_ties.csv",
           ties_prof, c(1, 6, 12.5, 24, 36)),
  cox_case("ties_breslow", Surv(time, status) ~ tier + age + sex, ties, "breslow",
           "tests/reference/data/cox_ties.csv", ties_prof, c(1, 6, 12.5, 24, 36), resid = FALSE),
  cox_case("ties_cluster", Surv(time, status) ~ tier + age + sex, ties, "efron", "tests/reference/data/cox_ties.csv",
           ties_prof, c(6, 24), cluster = "cl", resid = FALSE, note = "cl = (row - 1) %/% 3"),
  cox_case("entry_efron", Surv(entry, time, status) ~ tier + age + sex, dentry, "efron",
           "tests/reference/data/cox_entry.csv", ties_prof, c(2, 10, 25.5, 40), resid = FALSE),
  cox_case("entry_breslow", Surv(entry, time, status) ~ tier + age + sex, dentry, "breslow",
           "tests/reference/data/cox_entry.csv", ties_prof, c(2, 10, 25.5, 40)),
  cox_case("entry_strata_cluster", Surv(entry, time, status) ~ tier + age + strata(sex), dentry, "efron",
           "tests/reference/data/cox_entry.csv",
           data.frame(tier = factor(c("normal", "mild"), levels = TIERS), age = c(60, 70), sex = c("F", "M")),
           c(5, 20, 40), cluster = "cl", note = "cl = (row - 1) %/% 3"),
  cox_case("colon_cluster", Surv(time, status) ~ rx + age + sex + strata(etype), colon, "efron",
           "tests/reference/data/colon.csv",
           data.frame(rx = factor(c("Obs", "Lev+5FU"), levels = levels(colon$rx)), age = c(60, 70), sex = c(0, 1),
                      etype = c(1, 2)), c(365, 1000, 2500), cluster = "id", resid = FALSE,
           note = "two rows per id (recurrence etype 1, death etype 2)"),
  cox_case("colon_cluster_weights", Surv(time, status) ~ rx + age + sex, colon, "breslow",
           "tests/reference/data/colon.csv",
           data.frame(rx = factor("Lev", levels = levels(colon$rx)), age = 60, sex = 1), c(365, 1000),
           cluster = "id", weights = "age", resid = FALSE, note = "weights = age (a test of weighted clusters)")
)
names(cox) <- vapply(cox, function(m) m$id, "")

# --- log-rank family ----------------------------------------------------------------
# An independent loop implementation of the weighted log-rank statistic with
# Fleming-Harrington G(rho, gamma) weights S(t-)^rho (1 - S(t-))^gamma (S the
# pooled Kaplan-Meier with the same at-risk sets, per stratum) and delayed
# entry (at risk at t: entry < t <= time). Checked against survdiff
# (gamma = 0, no entry) and coxph's Breslow score test (rho = gamma = 0, entry, no ties).
fh <- function(time, status, group, rho = 0, gamma = 0, entry = NULL, strata = NULL) {
  lev <- sort(unique(group)); k <- length(lev)
  if (is.null(entry)) entry <- rep(-Inf, length(time))
  if (is.null(strata)) strata <- rep(1, length(time))
  O <- E <- numeric(k); V <- matrix(0, k, k)
  for (s in unique(strata)) {
    ii <- strata == s
    t <- time[ii]; d <- status[ii]; gg <- group[ii]; en <- entry[ii]
    km <- 1
    for (u in sort(unique(t[d == 1]))) {
      atrisk <- en < u & t >= u
      nj <- sapply(lev, function(l) sum(atrisk & gg == l))
      dj <- sapply(lev, function(l) sum(t == u & d == 1 & gg == l))
      n <- sum(nj); dd <- sum(dj)
      w <- km^rho * (1 - km)^gamma
      O <- O + w * dj
      E <- E + w * dd * nj / n
      h <- if (n > 1) dd * (n - dd) / (n - 1) else 0
      V <- V + w^2 * h * (diag(nj / n) - outer(nj / n, nj / n))
      km <- km * (1 - dd / n)
    }
  }
  dlt <- (O - E)[-1]
  list(chisq = as.numeric(dlt %*% solve(V[-1, -1, drop = FALSE], dlt)), obs = O, exp = E, var = V)
}

lr_case <- function(id, csv, formula, data, group, rho = 0, gamma = 0, entry = NULL, strata = NULL, note = "") {
  gvals <- data[[group]]
  if (gamma == 0 && is.null(entry)) {
    sd <- survdiff(formula, data = data, rho = rho)
    chisq <- sd$chisq; obs <- if (is.matrix(sd$obs)) rowSums(sd$obs) else sd$obs
    ex <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
    v <- sd$var
    mine <- fh(data$time, data$status, gvals, rho, 0, NULL, if (is.null(strata)) NULL else data[[strata]])
    stopifnot(isTRUE(all.equal(mine$chisq, chisq, tolerance = 1e-10)),
              isTRUE(all.equal(as.numeric(mine$exp), as.numeric(ex), tolerance = 1e-10)))
    source <- "survdiff"
  } else {
    r <- fh(data$time, data$status, gvals, rho, gamma, if (is.null(entry)) NULL else data[[entry]],
            if (is.null(strata)) NULL else data[[strata]])
    chisq <- r$chisq; obs <- r$obs; ex <- r$exp; v <- r$var
    source <- "fh loop (this script)"
  }
  list(id = id, csv = csv, group = group, rho = rho, gamma = gamma, entry = entry, strata = strata,
       source = source, note = note, groups = as.character(sort(unique(gvals))),
       chisq = num(chisq), df = length(unique(gvals)) - 1,
       observed = num(obs), expected = num(ex), var = rows(v))
}

lung$sexf <- ifelse(lung$sex == 1, "m", "f")
V <- "tests/reference/data/veteran.csv"
T <- "tests/reference/data/cox_ties.csv"
ties$tierc <- as.character(ties$tier)
logrank <- list(
  lr_case("lung_rho0", L, Surv(time, status) ~ sexf, lung, "sexf", 0),
  lr_case("lung_rho1", L, Surv(time, status) ~ sexf, lung, "sexf", 1),
  lr_case("lung_rho05", L, Surv(time, status) ~ sexf, lung, "sexf", 0.5),
  lr_case("veteran_rho1", V, Surv(time, status) ~ celltype, veteran, "celltype", 1),
  lr_case("ties_rho1", T, Surv(time, status) ~ tierc, ties, "tierc", 1),
  lr_case("ties_rho1_strata", T, Surv(time, status) ~ tierc + strata(sex), ties, "tierc", 1, strata = "sex"),
  lr_case("lung_fh01", L, NULL, lung, "sexf", 0, 1),
  lr_case("veteran_fh11", V, NULL, veteran, "celltype", 1, 1),
  lr_case("ties_fh0505", T, NULL, ties, "tierc", 0.5, 0.5),
  lr_case("entry_rho0", "tests/reference/data/lr_entry.csv", NULL, lr, "group", 0, 0, entry = "entry"),
  lr_case("entry_fh11_strata", "tests/reference/data/lr_entry.csv", NULL, lr, "group", 1, 1, entry = "entry",
          strata = "stratum"),
  lr_case("cox_entry_rho1", "tests/reference/data/cox_entry.csv", NULL, transform(dentry, tierc = as.character(tier)),
          "tierc", 1, 0, entry = "entry", note = "tied times and entries")
)
names(logrank) <- vapply(logrank, function(m) m$id, "")
# The log-rank with delayed entry and no tied times is coxph's score test (Breslow = Efron without ties).
sc <- summary(coxph(Surv(entry, time, status) ~ factor(group), lr, ties = "breslow"))$sctest[["test"]]
stopifnot(isTRUE(all.equal(sc, logrank$entry_rho0$chisq[[1]], tolerance = 1e-10)))
logrank$entry_rho0$coxph_score <- num(sc)

# --- logistic robust variance ----------------------------------------------------------------
bal <- read.csv(file.path(DATA_DIR, "balanced.csv"))
bal$tier <- factor(bal$tier, levels = TIERS)
bal$sex <- factor(bal$sex)
bal$cl <- (seq_len(nrow(bal)) - 1) %/% 5
bal$w <- 0.5 + (seq_len(nrow(bal)) %% 4) / 4
colon_d <- colon[colon$etype == 2, ]
colon_r <- colon
logit_case <- function(id, csv, formula, data, cluster = NULL, weights = NULL, note = "") {
  args <- list(formula = formula, data = data, family = binomial, control = glm.control(epsilon = 1e-12,
               maxit = 100))
  if (!is.null(weights)) args$weights <- data[[weights]]
  fit <- suppressWarnings(do.call("glm", args))  # non-integer weights: "non-integer #successes"
  hc0 <- vcovHC(fit, type = "HC0")
  out <- list(id = id, csv = csv, formula = paste(deparse(formula), collapse = " "), weights = weights,
              cluster = cluster, note = note, coef_names = names(coef(fit)), coef = num(coef(fit)),
              model_se = num(sqrt(diag(vcov(fit)))), hc0 = rows(hc0), hc0_se = num(sqrt(diag(hc0))))
  if (!is.null(cluster)) {
    cl <- vcovCL(fit, cluster = data[[cluster]], type = "HC0")  # cadjust = TRUE: G / (G - 1)
    cl_noadj <- vcovCL(fit, cluster = data[[cluster]], type = "HC0", cadjust = FALSE)
    out$cl <- rows(cl); out$cl_se <- num(sqrt(diag(cl)))
    out$cl_noadj_se <- num(sqrt(diag(cl_noadj)))
    out$n_clusters <- length(unique(data[[cluster]]))
  }
  out
}
B <- "tests/reference/data/balanced.csv"
C <- "tests/reference/data/colon.csv"
logistic <- list(
  logit_case("balanced", B, y ~ tier + age + sex, bal, cluster = "cl", note = "cl = (row - 1) %/% 5"),
  logit_case("balanced_weights", B, y ~ tier + age + sex, bal, cluster = "cl", weights = "w",
             note = "w = 0.5 + (row %% 4) / 4, cl = (row - 1) %/% 5"),
  logit_case("colon_death", C, status ~ rx + age + sex, colon_d, note = "etype == 2 (death): one row per id"),
  logit_case("colon_both", C, status ~ rx + age + sex, colon_r, cluster = "id",
             note = "both rows per id (recurrence and death), clustered by id")
)
names(logistic) <- vapply(logistic, function(m) m$id, "")

header <- list(
  r_version = R.version.string,
  packages = sapply(c("survival", "sandwich", "jsonlite"), function(p) as.character(packageVersion(p)),
                    simplify = FALSE),
  script = SCRIPT_PATH,
  regenerate = paste("apt-get install -y r-base-core r-cran-survival r-cran-sandwich r-cran-jsonlite &&", REGEN_CMD),
  rng = "RNGkind('Mersenne-Twister', 'Inversion', 'Rejection'); set.seed(20261202) lr_entry",
  non_finite_encoding = "non-finite numbers are the strings \"Inf\", \"-Inf\", \"NaN\", \"NA\"",
  conventions = list(
    basehaz = "basehaz(fit, centered = FALSE / TRUE): time, hazard, strata",
    predict = "summary(survfit(fit, newdata = profile, conf.type = <key>), times = times): time, surv, std.err (of S), lower, upper, cumhaz, std.chaz; one profile at a time",
    residuals = "residuals(fit, type = ...) default (unweighted); schoenfeld rows per event in R's order, schoenfeld_time their times",
    cluster = "coxph(..., cluster = <col>): var = robust, naive_var model-based, robust_score = fit$rscore",
    logrank = "survdiff(rho =) where gamma = 0 and no entry (checked equal to the fh loop); else the fh loop of this script",
    logistic = "glm(binomial, epsilon = 1e-12); hc0 = sandwich::vcovHC(type = 'HC0'); cl = vcovCL(cluster, type = 'HC0') with its default cadjust = TRUE (G/(G-1)); cl_noadj_se with cadjust = FALSE"
  )
)
write_json(list(header = header, cox = cox, logrank = logrank, logistic = logistic), OUT_JSON, digits = NA,
           auto_unbox = TRUE, pretty = FALSE)
cat("wrote", OUT_JSON, "\n")
