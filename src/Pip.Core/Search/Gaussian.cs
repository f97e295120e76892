namespace Pip.Search;

/// <summary>
/// Standard normal distribution functions in log space, accurate far into the tails (needed for the probability mass
/// of an integer's cell under a kernel far away from it), plus a seeded normal draw.
/// </summary>
internal static class Gaussian
{
    private const double Sqrt2 = 1.4142135623730951;
    private const double LogSqrt2Pi = 0.91893853320467274; // log(sqrt(2 pi))
    private const double LogSqrtPi = 0.57236494292470008;  // log(sqrt(pi))
    private const double TwoOverSqrtPi = 1.1283791670955126;
    private const double Ln2 = 0.69314718055994531;

    /// <summary>log of the standard normal density at <paramref name="z"/>.</summary>
    public static double LogPdf(double z) => -0.5 * z * z - LogSqrt2Pi;

    /// <summary>The complementary error function erfc(x) = 1 − erf(x).</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x < 0)
        {
            return 2 - Erfc(-x);
        }

        return x < 2.5 ? 1 - ErfSeries(x) : Math.Exp(LogErfcLarge(x));
    }

    /// <summary>log erfc(x), finite for every finite x (no underflow for large x).</summary>
    public static double LogErfc(double x)
    {
        if (double.IsNaN(x))
        {
            return double.NaN;
        }

        if (x < 0)
        {
            // erfc(x) = 2 − erfc(−x), between 1 and 2.
            return Ln2 + Log1P(-0.5 * Erfc(-x));
        }

        return x < 2.5 ? Math.Log(1 - ErfSeries(x)) : LogErfcLarge(x);
    }

    /// <summary>Φ(z), the standard normal distribution function.</summary>
    public static double Cdf(double z) => 0.5 * Erfc(-z / Sqrt2);

    /// <summary>log Φ(z).</summary>
    public static double LogCdf(double z) => z < 0 ? LogErfc(-z / Sqrt2) - Ln2 : Log1P(-0.5 * Erfc(z / Sqrt2));

    /// <summary>log(Φ(b) − Φ(a)), the log probability that a standard normal falls in [a, b]; −∞ when a ≥ b.</summary>
    public static double LogMass(double a, double b)
    {
        if (!(a < b))
        {
            return double.NegativeInfinity;
        }

        if (a >= 0)
        {
            // Right tail: use the symmetry so that the subtraction happens where Φ is small and accurate.
            return LogMass(-b, -a);
        }

        if (b <= 0)
        {
            double logB = LogCdf(b);
            return logB + Log1MExp(LogCdf(a) - logB);
        }

        // a < 0 < b: the mass is 1 − Φ(a) − (1 − Φ(b)), at least a sizeable fraction when both tails are small.
        return Log1P(-Cdf(a) - Cdf(-b));
    }

    /// <summary>log(1 + x), accurate for small |x|.</summary>
    public static double Log1P(double x)
    {
        double u = 1 + x;
        if (u == 1)
        {
            return x;
        }

        // Corrects the rounding of 1 + x (Goldberg's trick).
        return Math.Log(u) * x / (u - 1);
    }

    /// <summary>log(1 − e^x) for x ≤ 0.</summary>
    public static double Log1MExp(double x)
    {
        if (x >= 0)
        {
            return x == 0 ? double.NegativeInfinity : double.NaN;
        }

        return x > -Ln2 ? Math.Log(-ExpM1(x)) : Log1P(-Math.Exp(x));
    }

    /// <summary>e^x − 1, accurate for small |x|.</summary>
    public static double ExpM1(double x)
    {
        double u = Math.Exp(x);
        if (u == 1)
        {
            return x;
        }

        double um1 = u - 1;
        return um1 == -1 ? -1 : um1 * x / Math.Log(u);
    }

    /// <summary>A standard normal draw (Box–Muller, one of the pair).</summary>
    public static double NextStandardNormal(Random random)
    {
        double u1 = 1 - random.NextDouble(); // (0, 1]
        double u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>
    /// A draw from N(<paramref name="mu"/>, <paramref name="sigma"/>²) truncated to [<paramref name="low"/>, <paramref name="high"/>],
    /// by rejection (the kernels TPE builds have their mean inside the range and a width at most the range, so at least a
    /// third of the draws are accepted); clamped after many rejections as a safeguard.
    /// </summary>
    public static double NextTruncated(Random random, double mu, double sigma, double low, double high)
    {
        for (int attempt = 0; attempt < 1000; attempt++)
        {
            double x = mu + sigma * NextStandardNormal(random);
            if (x >= low && x <= high)
            {
                return x;
            }
        }

        return Math.Clamp(mu, low, high);
    }

    /// <summary>erf(x) for 0 ≤ x &lt; 2.5 by the series 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (2n+1)!!, whose terms are all positive.</summary>
    private static double ErfSeries(double x)
    {
        double x2 = x * x;
        double term = x;
        double sum = x;
        for (int n = 1; n < 200; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
            if (term < sum * 1e-17)
            {
                break;
            }
        }

        return TwoOverSqrtPi * Math.Exp(-x2) * sum;
    }

    /// <summary>
    /// log erfc(x) for x ≥ 2.5 from the continued fraction erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))),
    /// evaluated with the modified Lentz method.
    /// </summary>
    private static double LogErfcLarge(double x)
    {
        const double Tiny = 1e-300;
        double f = x;
        double c = f;
        double d = 0;
        for (int n = 1; n < 500; n++)
        {
            double an = 0.5 * n;
            d = x + an * d;
            d = d == 0 ? Tiny : d;
            c = x + an / c;
            c = c == 0 ? Tiny : c;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16)
            {
                break;
            }
        }

        return -x * x - LogSqrtPi - Math.Log(f);
    }
}
