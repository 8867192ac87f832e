# -----------------------------------------------------------------------------
# rates_reference.R -- R reference values for neutrostats/stats/rates.py:
# incidence-rate intervals, rate ratios and differences, Poisson / quasi-Poisson
# / negative binomial regression with a person-time offset, sandwich and
# cluster-robust variances, Lexis splitting and SIR/SMR.
#
# Run from the repository root:
#     Rscript tests/reference/rates_reference.R
#
# Reads   tests/reference/data/veteran.csv           (write_survival_data.R)
#         popEpi's data sets sire and popmort         (shipped with popEpi)
# Writes  tests/reference/data/rates_cohort.csv      synthetic cohort (4 tiers)
#         tests/reference/data/rates_reference_table.csv  made-up reference rates
#         tests/reference/data/rates_sire.csv        popEpi::sire with numeric time scales
#         tests/reference/data/rates_popmort.csv     popEpi::popmort (hazards per person-year)
#         tests/reference/rates_reference.json       all reference numbers
#
# Every computation uses the data read back from the CSV files, so Python and
# R see identical input. Deterministic (fixed RNG kind and seed).
# Packages (Debian bookworm): r-base-core r-cran-epir r-cran-popepi r-cran-epi
# r-cran-mass r-cran-sandwich r-cran-survival r-cran-data.table r-cran-jsonlite.
# -----------------------------------------------------------------------------

suppressPackageStartupMessages({
  library(survival)
  library(epiR)
  library(popEpi)
  library(Epi)
  library(MASS)
  library(sandwich)
  library(data.table)
  library(jsonlite)
})

SCRIPT_PATH <- "tests/reference/rates_reference.R"
OUT_JSON    <- "tests/reference/rates_reference.json"
DATA_DIR    <- "tests/reference/data"
REGEN_CMD   <- "Rscript tests/reference/rates_reference.R (from the repository root)"
if (!file.exists(SCRIPT_PATH)) stop("run this script from the repository root: ", REGEN_CMD)

RNGkind("Mersenne-Twister", "Inversion", "Rejection")
options(warn = 1)
TIERS <- c("normal", "subnormal", "mild", "moderate_severe")
EPS <- glm.control(epsilon = 1e-12, maxit = 100)

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

# Decimal calendar year as neutrostats reads dates: year + elapsed share of its days.
dec_year <- function(d) {
  d <- as.Date(d)
  y <- as.integer(format(d, "%Y"))
  start <- as.Date(sprintf("%d-01-01", y))
  len <- as.numeric(as.Date(sprintf("%d-01-01", y + 1)) - start)
  y + as.numeric(d - start) / len
}

# --- 1. intervals for one rate -------------------------------------------------
rate_cases <- list(c(0, 100), c(1, 2.5), c(2, 10), c(7, 1234.5), c(25, 3000), c(150, 12000.25), c(3, 0.75))
rates <- list()
for (cl in c(0.95, 0.90)) {
  for (cs in rate_cases) {
    d <- cs[1]; pt <- cs[2]
    pt_exact <- poisson.test(d, pt, conf.level = cl)$conf.int
    ep <- epi.conf(matrix(c(d, pt), ncol = 2), ctype = "inc.rate", method = "exact", conf.level = cl)
    ebv <- epi.conf(matrix(c(d, pt), ncol = 2), ctype = "inc.rate", method = "byar", conf.level = cl)
    byar <- if (d > 0) epi.smr(obs = d, exp = pt, method = "byar", conf.level = cl) else NULL
    wald <- if (d > 0) epi.smr(obs = d, exp = pt, method = "rothman.greenland", conf.level = cl) else NULL
    stopifnot(abs(ep$lower - pt_exact[1]) <= 1e-12 * max(1, pt_exact[1]),
              abs(ep$upper - pt_exact[2]) <= 1e-12 * pt_exact[2])
    rates[[length(rates) + 1]] <- list(
      n_event = d, person_time = pt, conf_level = cl,
      exact = list(conf_low = num(pt_exact[1]), conf_high = num(pt_exact[2])),
      byar = if (is.null(byar)) NULL else list(conf_low = num(byar$lower), conf_high = num(byar$upper)),
      wald = if (is.null(wald)) NULL else list(conf_low = num(wald$lower), conf_high = num(wald$upper)),
      epi_conf_byar = list(conf_low = num(ebv$lower), conf_high = num(ebv$upper)))
  }
}

# --- 2. rate ratio and difference of two groups ---------------------------------
two_cases <- list(c(4, 400, 10, 2000), c(0, 150, 12, 900), c(30, 1000.5, 45, 2500), c(3, 10, 1, 20),
                  c(120, 5000, 80, 6000), c(7, 50, 7, 50))
two <- list()
for (cs in two_cases) {
  x1 <- cs[1]; t1 <- cs[2]; x0 <- cs[3]; t0 <- cs[4]
  p <- poisson.test(c(x1, x0), c(t1, t0))
  e2 <- epi.2by2(as.table(matrix(c(x1, t1, x0, t0), nrow = 2, byrow = TRUE)), method = "cohort.time",
                 units = 1000)$massoc.detail
  two[[length(two) + 1]] <- list(
    x1 = x1, t1 = t1, x0 = x0, t0 = t0,
    exact = list(estimate = num(p$estimate), conf_low = num(p$conf.int[1]), conf_high = num(p$conf.int[2]),
                 p_value = num(p$p.value)),
    # epiR labels as "wald" an interval that is the exact one (checked here)
    epir_irr = list(conf_low = num(e2$IRR.strata.wald$lower), conf_high = num(e2$IRR.strata.wald$upper)),
    difference_per_1000 = list(estimate = num(e2$ARate.strata.wald$est), conf_low = num(e2$ARate.strata.wald$lower),
                               conf_high = num(e2$ARate.strata.wald$upper)))
}

# --- 3. a synthetic cohort ----------------------------------------------------------
set.seed(20261202)
n <- 4000
tier <- sample(TIERS, n, replace = TRUE, prob = c(0.55, 0.25, 0.15, 0.05))
age <- round(runif(n, 20, 90), 2)
sex <- sample(c("F", "M"), n, replace = TRUE, prob = c(0.56, 0.44))
index_year <- round(runif(n, 2000, 2013), 4)
frailty <- rgamma(n, shape = 2, rate = 2)  # extra-Poisson variation for the negative binomial
rate <- 0.012 * exp(log(2.2) * (age - 60) / 10 + log(1.4) * (sex == "M")) *
  c(1, 1.3, 1.8, 4)[match(tier, TIERS)] * frailty
t_event <- rexp(n, rate)
t_end <- 2017 - index_year
time <- round(pmin(t_event, t_end), 4)
death <- as.integer(t_event <= t_end)
write.csv(data.frame(person_id = seq_len(n), tier = tier, age_at_index = age, sex = sex, index_year = index_year,
                     death_time = time, death = death),
          file.path(DATA_DIR, "rates_cohort.csv"), row.names = FALSE)
coh <- read.csv(file.path(DATA_DIR, "rates_cohort.csv"))
coh$tier <- factor(coh$tier, levels = TIERS)
coh$sex <- factor(coh$sex)

by_tier <- list()
for (tr in TIERS) {
  s <- coh[coh$tier == tr, ]
  d <- sum(s$death); pt <- sum(s$death_time)
  ci <- poisson.test(d, pt)$conf.int
  by_tier[[tr]] <- list(n = nrow(s), n_event = d, person_years = num(pt), rate_per_1000 = num(1000 * d / pt),
                        conf_low = num(1000 * ci[1]), conf_high = num(1000 * ci[2]))
}
h4 <- list()
for (tr in TIERS) {
  s <- coh[coh$tier == tr, ]
  d <- sum(s$death == 1 & s$death_time <= 4); pt <- sum(pmin(s$death_time, 4))
  h4[[tr]] <- list(n_event = d, person_years = num(pt))
}

# --- 4. Poisson regression ------------------------------------------------------------
glm_case <- function(id, formula, data, csv, cluster = NULL) {
  # glm() takes its covariance from the weights of the last iteration's start: refit from the
  # converged coefficients so that they are the weights at the estimate (without this, a level
  # with one event leaves standard errors 1e-5 off even at epsilon 1e-12)
  f <- glm(formula, family = poisson, data = data, control = EPS)
  f <- glm(formula, family = poisson, data = data, control = EPS, start = coef(f))
  q <- glm(formula, family = quasipoisson, data = data, control = EPS, start = coef(f))
  sq <- coef(summary(q))
  hc0 <- sqrt(diag(vcovHC(f, type = "HC0")))
  nb0 <- glm.nb(formula, data = data)
  # glm.nb stops its theta search early (theta.ml's step tolerance 1.2e-4, 25
  # alternations): continue the same alternation to convergence, theta by
  # uniroot on theta.ml's score (in log theta) to 1e-14, the glm to 1e-12.
  theta_root <- function(y, mu) {
    score <- function(lt) {
      th <- exp(lt)
      # theta.ml's score, log(th) + 1 - log(th + mu) - (y + th)/(mu + th), written without cancellation
      sum(digamma(th + y) - digamma(th) - log1p(mu / th) + (mu - y) / (mu + th))
    }
    exp(uniroot(score, c(log(1e-8), log(1e6)), tol = 1e-14)$root)
  }
  th <- theta_root(nb0$y, fitted(nb0))
  nb <- nb0
  for (i in 1:500) {
    nb <- glm(formula, family = negative.binomial(th), data = data, control = EPS, start = coef(nb))
    th_new <- theta_root(nb$y, fitted(nb))
    if (abs(th_new - th) <= 1e-11 * th) break
    th <- th_new
  }
  th <- th_new
  nb <- glm(formula, family = negative.binomial(th), data = data, control = EPS, start = coef(nb))
  nb <- glm(formula, family = negative.binomial(th), data = data, control = EPS, start = coef(nb))
  snb <- coef(summary(nb, dispersion = 1))  # as summary.negbin: theta known, no dispersion estimated
  sf <- coef(summary(f))
  terms <- list()
  for (nm in rownames(sf)) {
    terms[[nm]] <- list(
      estimate = num(sf[nm, 1]), std_error = num(sf[nm, 2]), p_value = num(sf[nm, 4]),
      robust_std_error = num(hc0[[nm]]),
      quasi_std_error = num(sq[nm, 2]), quasi_p_value = num(sq[nm, 4]),
      nb_estimate = num(snb[nm, 1]), nb_std_error = num(snb[nm, 2]), nb_p_value = num(snb[nm, 4]),
      glm_nb_default_estimate = num(coef(nb0)[[nm]]))
  }
  out <- list(id = id, csv = csv, formula = paste(deparse(formula), collapse = " "), n = nrow(data),
              terms = terms, dispersion = num(summary(q)$dispersion), theta = num(th),
              glm_nb_default_theta = num(nb0$theta), df_residual = f$df.residual)
  if (!is.null(cluster)) {
    cl <- sqrt(diag(vcovCL(f, cluster = data[[cluster]], type = "HC0")))
    cl1 <- sqrt(diag(vcovCL(f, cluster = data[[cluster]])))
    for (nm in rownames(sf)) {
      out$terms[[nm]]$cluster_std_error <- num(cl[[nm]])
      out$terms[[nm]]$cluster_hc1_std_error <- num(cl1[[nm]])
    }
  }
  out
}

vet <- read.csv(file.path(DATA_DIR, "veteran.csv"))
vet$celltype <- factor(vet$celltype, levels = c("squamous", "smallcell", "adeno", "large"))
vet$py <- vet$time / 365.25
glms <- list(
  glm_case("cohort", death ~ tier + age_at_index + sex + offset(log(death_time)), coh,
           "tests/reference/data/rates_cohort.csv"),
  glm_case("veteran", status ~ celltype + karno + age + trt + offset(log(py)), vet,
           "tests/reference/data/veteran.csv"))

# --- 5. Lexis splitting of the synthetic cohort (popEpi::splitMulti) ------------------------
AGE_BREAKS <- c(0, seq(30, 90, by = 10), Inf)
PER_BREAKS <- c(2000, 2005, 2010, 2015, 2020)
lab <- function(b) {
  f <- function(x) ifelse(is.infinite(x), "Inf", format(x, scientific = FALSE, trim = TRUE))
  paste0("[", f(head(b, -1)), ",", f(tail(b, -1)), ")")
}
lex <- Lexis(entry = list(fot = 0, per = coh$index_year, age = coh$age_at_index),
             exit = list(fot = coh$death_time), exit.status = coh$death, entry.status = 0,
             data = coh, merge = TRUE)
sp <- splitMulti(lex, breaks = list(age = AGE_BREAKS, per = PER_BREAKS), drop = FALSE)
sp <- as.data.frame(sp)
mid_age <- sp$age + sp$lex.dur / 2
mid_per <- sp$per + sp$lex.dur / 2
sp$age_band <- factor(lab(AGE_BREAKS)[findInterval(mid_age, AGE_BREAKS)], levels = lab(AGE_BREAKS))
sp$period <- factor(lab(PER_BREAKS)[findInterval(mid_per, PER_BREAKS)], levels = lab(PER_BREAKS))
sp$event <- as.integer(sp$lex.Xst == 1 & sp$lex.Cst == 0)
stopifnot(abs(sum(sp$lex.dur) - sum(coh$death_time)) < 1e-8, sum(sp$event) == sum(coh$death))
cells <- aggregate(cbind(pyrs = lex.dur, events = event) ~ age_band + period + tier, data = sp, FUN = sum)
split_cells <- lapply(seq_len(nrow(cells)), function(i)
  list(age_band = as.character(cells$age_band[i]), period = as.character(cells$period[i]),
       tier = as.character(cells$tier[i]), person_years = num(cells$pyrs[i]), n_event = cells$events[i]))

# Poisson regression on the pieces, cluster-robust by person.
sp$sex <- factor(sp$sex)
sp$tier <- factor(sp$tier, levels = TIERS)
glms[[length(glms) + 1]] <- glm_case("cohort_split", event ~ tier + age_band + sex + offset(log(lex.dur)),
                                     sp, "split of rates_cohort.csv", cluster = "lex.id")

# --- 6. SIR against a made-up reference table (synthetic) ----------------------------
ref <- expand.grid(age_band = lab(AGE_BREAKS), sex = c("F", "M"), period = lab(PER_BREAKS),
                   stringsAsFactors = FALSE)
mid <- c(15, seq(35, 85, by = 10), 95)[match(ref$age_band, lab(AGE_BREAKS))]
ref$rate <- signif(2e-5 * exp(0.085 * mid) * ifelse(ref$sex == "M", 1.5, 1) *
                     (1 - 0.05 * (match(ref$period, lab(PER_BREAKS)) - 1)), 4)
write.csv(ref, file.path(DATA_DIR, "rates_reference_table.csv"), row.names = FALSE)
ref <- read.csv(file.path(DATA_DIR, "rates_reference_table.csv"))
agg <- aggregate(cbind(pyrs = lex.dur, obs = event) ~ age_band + period + sex + tier, data = sp, FUN = sum)
agg$age_band <- as.character(agg$age_band); agg$period <- as.character(agg$period)
agg$sex <- as.character(agg$sex); agg$tier <- as.character(agg$tier)
sir_cases <- list()
sir_one <- function(coh_data, ref_data, adjust, print_by, rate_col) {
  args <- list(coh.data = coh_data, coh.obs = "obs", coh.pyrs = "pyrs", ref.data = ref_data,
               ref.rate = rate_col, adjust = adjust, conf.type = "univariate")
  if (!is.null(print_by)) args$print <- print_by
  s <- as.data.frame(do.call(sir, args))
  # popEpi rounds its table (4 decimals): the expected counts by hand at full precision,
  # sum(pyrs * rate) over the cells, checked against popEpi's
  m <- merge(coh_data, ref_data, by = adjust, all.x = TRUE, sort = FALSE)
  stopifnot(!anyNA(m[[rate_col]]))
  grp <- if (is.null(print_by)) rep("all", nrow(m)) else as.character(m[[print_by]])
  e_by <- tapply(m$pyrs * m[[rate_col]], grp, sum)
  o_by <- tapply(m$obs, grp, sum)
  py_by <- tapply(m$pyrs, grp, sum)
  rows <- list()
  for (i in seq_len(nrow(s))) {
    g <- if (is.null(print_by)) "all" else as.character(s[[print_by]][i])
    o <- o_by[[g]]; e <- e_by[[g]]
    stopifnot(o == s$observed[i], abs(e - s$expected[i]) <= 1e-4 + 1e-8 * e)
    pt <- poisson.test(o, e)
    byar <- epi.smr(obs = o, exp = e, method = "byar")
    # popEpi solves the same exact limits with uniroot's default tolerance (~1e-4 on the count scale)
    stopifnot(abs(pt$conf.int[1] - s$sir.lo[i]) <= 1e-3 * s$sir.lo[i] + 1e-3,
              abs(pt$conf.int[2] - s$sir.hi[i]) <= 1e-3 * s$sir.hi[i] + 1e-3)
    rows[[i]] <- list(group = g, observed = o, expected = num(e), person_years = num(py_by[[g]]),
                      sir = num(o / e), popepi_expected = num(s$expected[i]), popepi_sir = num(s$sir[i]),
                      popepi_conf_low = num(s$sir.lo[i]), popepi_conf_high = num(s$sir.hi[i]),
                      exact_conf_low = num(pt$conf.int[1]), exact_conf_high = num(pt$conf.int[2]),
                      p_value = num(pt$p.value), byar_conf_low = num(byar$lower), byar_conf_high = num(byar$upper))
  }
  rows
}
sir_cases$cohort_by_tier <- sir_one(agg, ref, c("age_band", "sex", "period"), "tier", "rate")
sir_cases$cohort_all <- sir_one(agg, ref, c("age_band", "sex", "period"), NULL, "rate")

# --- 7. SMR of popEpi::sire (real data) against popEpi::popmort -----------------------------
data(sire, package = "popEpi"); data(popmort, package = "popEpi")
sire <- as.data.frame(sire)
sire_out <- data.frame(
  id = seq_len(nrow(sire)), sex = sire$sex, dg_year = dec_year(sire$dg_date),
  age_at_dg = as.numeric(as.Date(sire$dg_date) - as.Date(sire$bi_date)) / 365.25,
  fu_years = as.numeric(as.Date(sire$ex_date) - as.Date(sire$dg_date)) / 365.25,
  dead = as.integer(sire$status %in% c(1, 2)),
  dg_after_2002 = ifelse(as.Date(sire$dg_date) >= as.Date("2003-01-01"), "2003+", "1993-2002"))
sire_out <- sire_out[sire_out$fu_years > 0, ]
write.csv(sire_out, file.path(DATA_DIR, "rates_sire.csv"), row.names = FALSE)
pm <- as.data.frame(popmort)
write.csv(pm, file.path(DATA_DIR, "rates_popmort.csv"), row.names = FALSE)
si <- read.csv(file.path(DATA_DIR, "rates_sire.csv"))
pm <- read.csv(file.path(DATA_DIR, "rates_popmort.csv"))
SA <- c(0:100, Inf); SP <- 1993:2013
lx <- Lexis(entry = list(fot = 0, per = si$dg_year, age = si$age_at_dg), exit = list(fot = si$fu_years),
            exit.status = si$dead, entry.status = 0, data = si, merge = TRUE)
ss <- as.data.frame(splitMulti(lx, breaks = list(age = SA, per = SP), drop = FALSE))
ss$agegroup <- findInterval(ss$age + ss$lex.dur / 2, SA) - 1
ss$year <- SP[findInterval(ss$per + ss$lex.dur / 2, SP)]
ss$obs <- as.integer(ss$lex.Xst == 1 & ss$lex.Cst == 0)
stopifnot(!anyNA(ss$year), abs(sum(ss$lex.dur) - sum(si$fu_years)) < 1e-8)
sagg <- aggregate(cbind(pyrs = lex.dur, obs = obs) ~ agegroup + year + sex + dg_after_2002, data = ss, FUN = sum)
sir_cases$sire_by_period <- sir_one(sagg, pm, c("agegroup", "year", "sex"), "dg_after_2002", "haz")
sir_cases$sire_all <- sir_one(sagg, pm, c("agegroup", "year", "sex"), NULL, "haz")

# --- write ---------------------------------------------------------------------
pkg <- function(p) as.character(packageVersion(p))
out <- list(
  header = list(
    script = SCRIPT_PATH, regenerate = REGEN_CMD, r_version = R.version.string,
    packages = list(epiR = pkg("epiR"), popEpi = pkg("popEpi"), Epi = pkg("Epi"), MASS = pkg("MASS"),
                    sandwich = pkg("sandwich"), survival = pkg("survival"), data.table = pkg("data.table"),
                    jsonlite = pkg("jsonlite")),
    rng = "Mersenne-Twister / Inversion / Rejection, set.seed(20261202)",
    conventions = list(
      rates = "exact = poisson.test(d, T)$conf.int (= epi.conf(ctype='inc.rate', method='exact'), checked); byar = epi.smr(d, T, method='byar'); wald = epi.smr(d, T, method='rothman.greenland'); epi_conf_byar = epi.conf(ctype='inc.rate', method='byar'), which uses d + 0.5 in both limits (recorded, not the neutrostats definition)",
      two_groups = "exact = poisson.test(c(x1, x0), c(t1, t0)); epir_irr = epi.2by2(method='cohort.time')$massoc.detail$IRR.strata.wald (exact despite its name); difference_per_1000 = ARate.strata.wald with units = 1000",
      glm = "glm(family=poisson) with epsilon 1e-12, refitted from its converged coefficients (so that the covariance uses the weights at the estimate); robust = vcovHC(type='HC0'); quasi = glm(family=quasipoisson); nb = MASS::glm.nb continued to convergence: alternate glm(negative.binomial(theta)) and theta by uniroot on theta.ml's score (tol 1e-14) until theta changes < 1e-11 relative; glm_nb_default_* = glm.nb with its default control (not converged to 1e-6); cluster = vcovCL(type='HC0') (cadjust G/(G-1)); cluster_hc1 = vcovCL default",
      split = "popEpi::splitMulti of an Epi::Lexis object (fot, per, age), drop = FALSE; band of a piece from its midpoint; labels [a,b)",
      sir = "expected = sum(pyrs * rate) by hand (popEpi::sir rounds to 4 decimals: popepi_expected, checked to 1e-4); popEpi::sir(conf.type='univariate'): exact Poisson limits solved by uniroot at its default tolerance (popepi_*, agree with poisson.test to ~1e-4); exact = poisson.test(O, E); byar = epi.smr(O, E, method='byar'); p_value = poisson.test(O, E)$p.value",
      time_scales = "calendar time: year + elapsed share of its days; sire: age_at_dg and fu_years in days / 365.25")),
  rates = rates, two_groups = two, cohort_by_tier = by_tier, cohort_by_tier_horizon_4 = h4, glm = glms,
  split = list(age_breaks = num(AGE_BREAKS), period_breaks = PER_BREAKS, n_pieces = nrow(sp), cells = split_cells),
  sir = sir_cases,
  sire_split = list(n_pieces = nrow(ss), person_years = num(sum(ss$lex.dur)), deaths = sum(ss$obs)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE, null = "null"), OUT_JSON)
cat("wrote", OUT_JSON, "\n")
