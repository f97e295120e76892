namespace Pip.Search;

/// <summary>
/// A Parzen estimator over some parameters, as in TPE (Bergstra et al. 2011; Optuna's <c>_ParzenEstimator</c>): a
/// weighted mixture with one kernel per observation plus a prior kernel. Each kernel is a product over the parameters
/// of a truncated Gaussian (numbers, in log space for log-scaled ones; an integer takes the mass of its cell
/// [k − ½, k + ½]) or of a categorical distribution that puts extra weight on the observed choice. With one parameter
/// this is the independent TPE's estimator; with all of them, the multivariate TPE's.
/// </summary>
internal sealed class ParzenEstimator
{
    private const double MinSigmaWithoutClip = 1e-12;
    private const int FlatWeightCount = 25;

    private readonly double[] _logWeights;
    private readonly double[] _cumulativeWeights;
    private readonly Dimension[] _dimensions;

    /// <param name="parameters">The parameters modelled (none single-valued).</param>
    /// <param name="observations">One row per observation, oldest first, one internal value per parameter.</param>
    /// <param name="priorWeight">Weight of the prior kernel relative to an observation's (before the ramp).</param>
    /// <param name="magicClip">Whether Gaussian widths are at least range / min(100, 1 + kernels).</param>
    /// <param name="considerEndpoints">Whether the widths of the outermost observations also consider the distance to the bounds.</param>
    public ParzenEstimator(IReadOnlyList<SearchParameter> parameters, IReadOnlyList<double[]> observations, double priorWeight, bool magicClip, bool considerEndpoints)
    {
        int m = observations.Count;
        double[] weights = m == 0 ? [1.0] : [.. ObservationWeights(m), priorWeight];
        double sum = weights.Sum();
        Weights = weights.Select(w => w / sum).ToArray();
        _logWeights = Weights.Select(w => Math.Log(w)).ToArray();
        _cumulativeWeights = new double[Weights.Count];
        double running = 0;
        for (int k = 0; k < Weights.Count; k++)
        {
            running += Weights[k];
            _cumulativeWeights[k] = running;
        }

        _dimensions = new Dimension[parameters.Count];
        for (int d = 0; d < parameters.Count; d++)
        {
            double[] column = observations.Select(row => row[d]).ToArray();
            _dimensions[d] = parameters[d] switch
            {
                CategoricalParameter categorical => new CategoricalDimension(categorical.Choices.Count, column, priorWeight),
                IntegerParameter integer => new NumericDimension(integer.Low, integer.High, integer.Log, discrete: true, column, magicClip, considerEndpoints),
                FloatParameter real => new NumericDimension(real.Low, real.High, real.Log, discrete: false, column, magicClip, considerEndpoints),
                _ => throw new NotSupportedException($"Parameter '{parameters[d].Name}' is of an unknown kind {parameters[d].GetType().Name}."),
            };
        }
    }

    /// <summary>Normalised mixture weights: the observations' (oldest first), then the prior's.</summary>
    public IReadOnlyList<double> Weights { get; }

    /// <summary>Widths of the numeric dimension <paramref name="dimension"/>'s kernels, the prior's last (transformed space).</summary>
    internal IReadOnlyList<double> Sigmas(int dimension) => ((NumericDimension)_dimensions[dimension]).Sigma;

    /// <summary>
    /// Optuna's default observation weights: uniform below 25 observations; beyond, the 25 newest weigh 1 and the older
    /// ones ramp linearly from 1/m up to 1.
    /// </summary>
    internal static double[] ObservationWeights(int m)
    {
        var weights = new double[m];
        if (m < FlatWeightCount)
        {
            Array.Fill(weights, 1.0);
            return weights;
        }

        int ramp = m - FlatWeightCount;
        for (int i = 0; i < ramp; i++)
        {
            // linspace(1/m, 1, ramp)
            weights[i] = ramp == 1 ? 1.0 / m : 1.0 / m + (1 - 1.0 / m) * i / (ramp - 1);
        }

        Array.Fill(weights, 1.0, ramp, FlatWeightCount);
        return weights;
    }

    /// <summary>
    /// Widths of the observations' kernels: the larger distance to the neighbours in sorted order (the bounds count
    /// as neighbours; without <paramref name="considerEndpoints"/> the outermost observations use their inner neighbour
    /// only), clipped to [range / min(100, 1 + kernels), range] with the magic clip or [1e-12, range] without.
    /// </summary>
    internal static double[] ObservationSigmas(double[] mus, double low, double high, bool magicClip, bool considerEndpoints)
    {
        int m = mus.Length;
        int[] order = Enumerable.Range(0, m).OrderBy(i => mus[i]).ToArray();
        var sorted = new double[m + 2];
        sorted[0] = low;
        sorted[m + 1] = high;
        for (int i = 0; i < m; i++)
        {
            sorted[i + 1] = mus[order[i]];
        }

        var sortedSigmas = new double[m];
        for (int i = 0; i < m; i++)
        {
            sortedSigmas[i] = Math.Max(sorted[i + 1] - sorted[i], sorted[i + 2] - sorted[i + 1]);
        }

        if (!considerEndpoints && m >= 2)
        {
            sortedSigmas[0] = sorted[2] - sorted[1];
            sortedSigmas[m - 1] = sorted[m] - sorted[m - 1];
        }

        double range = high - low;
        double minSigma = magicClip ? range / Math.Min(100.0, 1.0 + (m + 1)) : MinSigmaWithoutClip;
        var sigmas = new double[m];
        for (int i = 0; i < m; i++)
        {
            sigmas[order[i]] = Math.Min(Math.Max(sortedSigmas[i], minSigma), range);
        }

        return sigmas;
    }

    /// <summary>One draw, one internal value per parameter.</summary>
    public double[] Sample(Random random)
    {
        double u = random.NextDouble();
        int kernel = Array.FindIndex(_cumulativeWeights, c => u < c);
        if (kernel < 0)
        {
            kernel = _cumulativeWeights.Length - 1;
        }

        var x = new double[_dimensions.Length];
        for (int d = 0; d < x.Length; d++)
        {
            x[d] = _dimensions[d].Sample(kernel, random);
        }

        return x;
    }

    /// <summary>log density (log mass for integers and choices) of <paramref name="x"/>, one internal value per parameter.</summary>
    public double LogPdf(ReadOnlySpan<double> x)
    {
        int kernels = _logWeights.Length;
        Span<double> terms = kernels <= 256 ? stackalloc double[kernels] : new double[kernels];
        _logWeights.CopyTo(terms);
        for (int d = 0; d < _dimensions.Length; d++)
        {
            _dimensions[d].AddLogPdf(x[d], terms);
        }

        double max = double.NegativeInfinity;
        foreach (double t in terms)
        {
            max = Math.Max(max, t);
        }

        if (double.IsNegativeInfinity(max))
        {
            return double.NegativeInfinity;
        }

        double sum = 0;
        foreach (double t in terms)
        {
            sum += Math.Exp(t - max);
        }

        return max + Math.Log(sum);
    }

    private abstract class Dimension
    {
        public abstract double Sample(int kernel, Random random);

        /// <summary>Adds each kernel's log density at <paramref name="x"/> to <paramref name="terms"/>.</summary>
        public abstract void AddLogPdf(double x, Span<double> terms);
    }

    private sealed class CategoricalDimension : Dimension
    {
        private readonly double[][] _probabilities;
        private readonly double[][] _logProbabilities;

        public CategoricalDimension(int choices, double[] observed, double priorWeight)
        {
            int kernels = observed.Length + 1;
            if (observed.Length == 0)
            {
                _probabilities = [Enumerable.Repeat(1.0 / choices, choices).ToArray()];
            }
            else
            {
                // Every kernel spreads priorWeight / kernels over the choices and adds 1 to its observed choice;
                // the last (prior) kernel has no observed choice and is uniform.
                _probabilities = new double[kernels][];
                for (int k = 0; k < kernels; k++)
                {
                    var row = new double[choices];
                    Array.Fill(row, priorWeight / kernels);
                    if (k < observed.Length)
                    {
                        row[(int)observed[k]] += 1;
                    }

                    double sum = row.Sum();
                    _probabilities[k] = sum > 0 ? row.Select(p => p / sum).ToArray() : row;
                }
            }

            _logProbabilities = _probabilities.Select(row => row.Select(p => Math.Log(p)).ToArray()).ToArray();
        }

        public override double Sample(int kernel, Random random)
        {
            double[] row = _probabilities[kernel];
            double u = random.NextDouble();
            double cumulative = 0;
            for (int c = 0; c < row.Length - 1; c++)
            {
                cumulative += row[c];
                if (u < cumulative)
                {
                    return c;
                }
            }

            return row.Length - 1;
        }

        public override void AddLogPdf(double x, Span<double> terms)
        {
            int c = (int)x;
            for (int k = 0; k < terms.Length; k++)
            {
                terms[k] += _logProbabilities[k][c];
            }
        }
    }

    private sealed class NumericDimension : Dimension
    {
        private readonly double _valueLow;
        private readonly double _valueHigh;
        private readonly bool _log;
        private readonly bool _discrete;
        private readonly double _low;   // transformed (log) and, for integers, widened by half a step
        private readonly double _high;
        private readonly double[] _mu;
        private readonly double[] _logNormaliser; // log σ + log mass of the truncation range, per kernel

        public NumericDimension(double valueLow, double valueHigh, bool log, bool discrete, double[] observed, bool magicClip, bool considerEndpoints)
        {
            _valueLow = valueLow;
            _valueHigh = valueHigh;
            _log = log;
            _discrete = discrete;
            double low = discrete ? valueLow - 0.5 : valueLow;
            double high = discrete ? valueHigh + 0.5 : valueHigh;
            _low = log ? Math.Log(low) : low;
            _high = log ? Math.Log(high) : high;
            double range = _high - _low;

            int m = observed.Length;
            double[] mus = observed.Select(Transform).ToArray();
            double[] sigmas = ObservationSigmas(mus, _low, _high, magicClip, considerEndpoints);
            _mu = [.. mus, 0.5 * (_low + _high)];
            Sigma = [.. sigmas, range];
            _logNormaliser = new double[m + 1];
            for (int k = 0; k <= m; k++)
            {
                _logNormaliser[k] = Math.Log(Sigma[k]) + Gaussian.LogMass((_low - _mu[k]) / Sigma[k], (_high - _mu[k]) / Sigma[k]);
            }
        }

        public double[] Sigma { get; }

        public override double Sample(int kernel, Random random)
        {
            double t = Gaussian.NextTruncated(random, _mu[kernel], Sigma[kernel], _low, _high);
            double x = _log ? Math.Exp(t) : t;
            if (_discrete)
            {
                x = Math.Round(x);
            }

            return Math.Clamp(x, _valueLow, _valueHigh);
        }

        public override void AddLogPdf(double x, Span<double> terms)
        {
            if (_discrete)
            {
                double left = _log ? Math.Log(x - 0.5) : x - 0.5;
                double right = _log ? Math.Log(x + 0.5) : x + 0.5;
                for (int k = 0; k < terms.Length; k++)
                {
                    double sigma = Sigma[k];
                    terms[k] += Gaussian.LogMass((left - _mu[k]) / sigma, (right - _mu[k]) / sigma) - (_logNormaliser[k] - Math.Log(sigma));
                }
            }
            else
            {
                double t = Transform(x);
                for (int k = 0; k < terms.Length; k++)
                {
                    terms[k] += Gaussian.LogPdf((t - _mu[k]) / Sigma[k]) - _logNormaliser[k];
                }
            }
        }

        private double Transform(double x) => _log ? Math.Log(x) : x;
    }
}
