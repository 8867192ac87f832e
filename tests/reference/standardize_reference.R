# -----------------------------------------------------------------------------
# standardize_reference.R -- R reference values for neutrostats.stats.standardize:
# riskRegression::ate (g-formula standardised risks, differences, ratios with
# influence-function standard errors) with coxph and with CSC, CSC
# coefficients and predictRisk of CSC fits for covariate profiles.
#
# Run from the repository root:
#     Rscript tests/reference/standardize_reference.R
#
# Reads   tests/reference/data/pbc.csv          (write_survival_data.R)
# Writes  tests/reference/data/melanoma.csv     riskRegression::Melanoma
#         tests/reference/data/std_untied.csv   synthetic, continuous times, 3 causes codes 0/1/2
#         tests/reference/data/std_ties.csv     synthetic, whole-month times (heavy ties)
#         tests/reference/standardize_reference.json
#
# Every model is fitted on the data read back from the CSV files. Deterministic.
# Packages (Debian bookworm): r-base-core r-cran-survival r-cran-riskregression
# r-cran-jsonlite.
#
# Conventions
#   * tier-like factors keep their level order (first = reference); other
#     factors alphabetical; coxph ties = "efron" unless the case says breslow.
#   * ate(fit, treatment=, data=, times=, cause=, se=TRUE); confint(ate) with
#     its defaults: meanRisk/diffRisk/ratioRisk.transform = "none" (Wald on the
#     natural scale, cut to [0,1], [-1,1], [0,Inf)); p-values test diff = 0 and
#     ratio = 1.  Only contrasts against the first level are kept.
#   * riskRegression's iidCox (2022.11.28) counts a tied event time once in
#     the compensator of the score residuals (1/S0, not d/S0), so with tied
#     event times its standard errors are not those of the dfbeta influence
#     function. For the tied coxph cases the script also computes, by hand,
#     ate's influence function with IFbeta = residuals(fit, "dfbeta") (the
#     same formula; it first checks that the hand formula with riskRegression's
#     own IFbeta reproduces ate's standard errors to 1e-10): key "corrected".
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(riskRegression)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/standardize_reference.R"
OUT_JSON <- "tests/reference/standardize_reference.json"
DATA_DIR <- "tests/reference/data"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root")
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
TIERS <- c("normal", "subnormal", "mild")

# --- data ----------------------------------------------------------------------
data(Melanoma, package = "riskRegression")
mel <- Melanoma[, c("time", "status", "invasion", "age", "sex")]
mel$invasion <- as.character(mel$invasion); mel$sex <- as.character(mel$sex)
write.csv(mel, file.path(DATA_DIR, "melanoma.csv"), row.names = FALSE)

sim <- function(n, months) {
  tier <- sample(TIERS, n, replace = TRUE, prob = c(0.5, 0.3, 0.2))
  age <- round(runif(n, 30, 85), 2)
  sex <- sample(c("F", "M"), n, replace = TRUE)
  lp <- c(normal = 0, subnormal = 0.4, mild = 0.9)[tier]
  t1 <- rexp(n, 0.05 * exp(lp + 0.03 * (age - 60)))
  t2 <- rexp(n, 0.08 * exp(0.5 * lp + 0.05 * (age - 60) + 0.3 * (sex == "M")))
  cens <- runif(n, 2, 15)
  time <- pmin(t1, t2, cens)
  status <- ifelse(time == cens, 0L, ifelse(time == t1, 1L, 2L))
  if (months) time <- pmax(1, ceiling(time * 12)) / 12 else time <- round(time, 6)
  data.frame(time = time, status = status, tier = tier, age = age, sex = sex)
}
set.seed(20260419)
write.csv(sim(400, FALSE), file.path(DATA_DIR, "std_untied.csv"), row.names = FALSE)
write.csv(sim(600, TRUE), file.path(DATA_DIR, "std_ties.csv"), row.names = FALSE)

rd <- function(f, tier = NULL, levels = NULL) {
  d <- read.csv(file.path(DATA_DIR, f))
  if (!is.null(tier)) d[[tier]] <- factor(d[[tier]], levels = levels)
  d
}
pbc <- rd("pbc.csv")
pbc <- pbc[complete.cases(pbc[, c("time", "status", "stage", "age", "sex")]), ]
pbc$stage <- factor(pbc$stage, levels = 1:4); pbc$dead <- as.integer(pbc$status == 2)
rownames(pbc) <- NULL
mel <- rd("melanoma.csv", "invasion", c("level.0", "level.1", "level.2"))
unt <- rd("std_untied.csv", "tier", TIERS)
tie <- rd("std_ties.csv", "tier", TIERS)
unt$dead <- as.integer(unt$status > 0); tie$dead <- as.integer(tie$status > 0)

# --- helpers ---------------------------------------------------------------------
num <- function(x) {
  x <- as.numeric(x); out <- as.list(signif(x, 15))
  for (i in seq_along(x)) if (!is.finite(x[i])) out[[i]] <- if (is.nan(x[i])) "NaN" else if (is.na(x[i])) "NA" else if (x[i] > 0) "Inf" else "-Inf"
  out
}
tab <- function(d, cols) { d <- as.data.frame(d); l <- lapply(cols, function(c) if (is.numeric(d[[c]])) num(d[[c]]) else as.character(d[[c]])); names(l) <- cols; l }

ate_case <- function(fit, data, treatment, times, cause = NA) {
  a <- if (is.na(cause)) ate(fit, treatment = treatment, data = data, times = times, se = TRUE, verbose = FALSE)
       else ate(fit, treatment = treatment, data = data, times = times, cause = cause, se = TRUE, verbose = FALSE)
  ci <- confint(a)
  ref <- levels(data[[treatment]])[1]
  mr <- ci$meanRisk; dr <- ci$diffRisk[ci$diffRisk$A == ref]; rr <- ci$ratioRisk[ci$ratioRisk$A == ref]
  list(times = num(times), cause = if (is.na(cause)) 1 else cause,
       meanRisk = tab(mr, c("time", "treatment", "estimate", "se", "lower", "upper")),
       diffRisk = tab(dr, c("time", "B", "estimate", "se", "lower", "upper", "p.value")),
       ratioRisk = tab(rr, c("time", "B", "estimate", "se", "lower", "upper", "p.value")),
       ate = a)
}

# ate's g-formula influence function for a coxph fit, by hand, with a given IFbeta.
hand_cox_iid <- function(fit, data, treatment, tau, IFbeta) {
  X <- model.matrix(fit); b <- coef(fit); r <- exp(drop(X %*% b))
  y <- fit$y; tt <- y[, 1]; ev <- y[, 2]
  lam <- predictCox(fit, type = "hazard", centered = FALSE)
  u <- lam$times[lam$hazard > 0]; l <- lam$hazard[lam$hazard > 0]
  S0 <- sapply(u, function(s) sum(r[tt >= s]))
  E <- t(sapply(u, function(s) colSums(X[tt >= s, , drop = FALSE] * r[tt >= s]))) / S0
  k <- u <= tau; Lam <- sum(l[k])
  C <- cumsum(l / S0); H <- colSums(E[k, , drop = FALSE] * l[k])
  iC <- sapply(pmin(tt, tau), function(s) if (any(u <= s)) C[max(which(u <= s))] else 0)
  kj <- match(tt, u)
  IFL <- -drop(IFbeta %*% H) - r * iC + ifelse(ev == 1 & tt <= tau, 1 / S0[kj], 0)
  n <- nrow(X); out <- list()
  for (lev in levels(data[[treatment]])) {
    d2 <- data; d2[[treatment]] <- factor(lev, levels = levels(data[[treatment]]))
    X2 <- model.matrix(delete.response(terms(fit)), d2)[, colnames(X), drop = FALSE]
    r2 <- exp(drop(X2 %*% b)); S <- exp(-r2 * Lam); F <- 1 - S
    out[[lev]] <- list(est = mean(F), iid = (F - mean(F)) / n + mean(S * r2) * IFL +
                         drop(IFbeta %*% colMeans(X2 * (S * r2 * Lam))))
  }
  out
}

corrected <- function(fit, data, treatment, times, a) {
  ii <- iidCox(fit, return.object = FALSE)
  levs <- levels(data[[treatment]]); ref <- levs[1]
  res <- list(time = c(), treatment = c(), estimate = c(), se = c(), diff_se = c(), ratio_se = c())
  for (tau in times) {
    raw <- hand_cox_iid(fit, data, treatment, tau, ii$IFbeta)
    mr <- a$meanRisk[a$meanRisk$time == tau]
    stopifnot(max(abs(sapply(raw, function(z) sqrt(sum(z$iid^2))) - mr$se)) < 1e-10)
    cor <- hand_cox_iid(fit, data, treatment, tau, residuals(fit, type = "dfbeta"))
    i0 <- cor[[ref]]$iid; m0 <- cor[[ref]]$est
    for (lev in levs) {
      z <- cor[[lev]]
      res$time <- c(res$time, tau); res$treatment <- c(res$treatment, lev); res$estimate <- c(res$estimate, z$est)
      res$se <- c(res$se, sqrt(sum(z$iid^2))); res$diff_se <- c(res$diff_se, sqrt(sum((z$iid - i0)^2)))
      res$ratio_se <- c(res$ratio_se, sqrt(sum((z$iid / m0 - z$est * i0 / m0^2)^2)))
    }
  }
  list(time = num(res$time), treatment = res$treatment, estimate = num(res$estimate), se = num(res$se),
       diff_se = num(res$diff_se), ratio_se = num(res$ratio_se))
}

strip <- function(x) { x$ate <- NULL; x }

# --- ate with coxph ------------------------------------------------------------
ATE <- list()
f <- coxph(Surv(time, dead) ~ stage + age + sex, data = pbc, x = TRUE, y = TRUE)
x <- ate_case(f, pbc, "stage", c(1825, 3650)); x$corrected <- corrected(f, pbc, "stage", c(1825, 3650), x$ate)
ATE$pbc_cox <- c(list(data = "pbc.csv", duration = "time", event = "dead (status == 2)", tier = "stage",
                      adjust = c("age", "sex"), ties = "efron"), strip(x))
f <- coxph(Surv(time, dead) ~ tier + age + sex, data = unt, x = TRUE, y = TRUE)
x <- ate_case(f, unt, "tier", c(2, 5))
ATE$untied_cox <- c(list(data = "std_untied.csv", duration = "time", event = "dead (status > 0)", tier = "tier",
                         adjust = c("age", "sex"), ties = "efron"), strip(x))
for (ties in c("efron", "breslow")) {
  f <- coxph(Surv(time, dead) ~ tier + age + sex, data = tie, x = TRUE, y = TRUE, ties = ties)
  x <- ate_case(f, tie, "tier", c(2, 5)); x$corrected <- corrected(f, tie, "tier", c(2, 5), x$ate)
  ATE[[paste0("ties_cox_", ties)]] <- c(list(data = "std_ties.csv", duration = "time", event = "dead (status > 0)",
                                             tier = "tier", adjust = c("age", "sex"), ties = ties), strip(x))
}

# --- ate with CSC; CSC coefficients; predictRisk -------------------------------
CSCS <- list()
csc_case <- function(id, d, tier, file, times, profiles) {
  fo <- as.formula(paste("Hist(time, status) ~", tier, "+ age + sex"))
  fit <- do.call(CSC, list(formula = fo, data = d))
  coefs <- lapply(fit$models, function(m) list(term = names(coef(m)), coef = num(coef(m)),
                                               se = num(sqrt(diag(vcov(m))))))
  names(coefs) <- as.character(fit$causes)
  pr <- list()
  for (c in fit$causes) pr[[as.character(c)]] <- lapply(seq_len(nrow(profiles)), function(i)
    num(predictRisk(fit, newdata = profiles[i, , drop = FALSE], times = times, cause = c)))
  x1 <- ate_case(fit, d, tier, times, cause = 1); x2 <- ate_case(fit, d, tier, times, cause = 2)
  CSCS[[id]] <<- list(data = file, tier = tier, adjust = c("age", "sex"), times = num(times),
                      coef = coefs, profiles = tab(profiles, names(profiles)), predict = pr,
                      ate_cause1 = strip(x1), ate_cause2 = strip(x2))
}
csc_case("melanoma", mel, "invasion", "melanoma.csv", c(1825, 3650),
         data.frame(invasion = factor(c("level.0", "level.2", "level.1"), levels = levels(mel$invasion)),
                    age = c(40, 70, 55), sex = c("Female", "Male", "Male")))
csc_case("untied", unt, "tier", "std_untied.csv", c(2, 5),
         data.frame(tier = factor(c("normal", "mild"), levels = TIERS), age = c(50, 75), sex = c("F", "M")))
csc_case("ties", tie, "tier", "std_ties.csv", c(2, 5),
         data.frame(tier = factor(c("normal", "mild"), levels = TIERS), age = c(50, 75), sex = c("F", "M")))

header <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
               riskRegression = as.character(packageVersion("riskRegression")),
               jsonlite = as.character(packageVersion("jsonlite")), script = SCRIPT_PATH,
               regenerate = "Rscript tests/reference/standardize_reference.R (from the repository root)")
writeLines(toJSON(list(header = header, ate = ATE, csc = CSCS), auto_unbox = TRUE, digits = NA, pretty = TRUE), OUT_JSON)
cat("wrote", OUT_JSON, "\n")
