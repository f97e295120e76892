using Pip.Search;

namespace Pip.Tests.Search;

public class ParzenEstimatorTests
{
    private static ParzenEstimator Create(SearchParameter parameter, params double[] observed) =>
        new([parameter], observed.Select(x => new[] { x }).ToList(), priorWeight: 1.0, magicClip: true, considerEndpoints: false);

    [Fact]
    public void ObservationSigmas_NeighbourDistances_FollowOptunasRules()
    {
        double[] mus = [0.6, 0.2, 0.5];

        // Sorted with bounds: 0 | 0.2 0.5 0.6 | 1. Larger neighbour gap: 0.3, 0.3, 0.4; without endpoints the outermost
        // use their inner neighbour: 0.2 → 0.3, 0.6 → 0.1.
        double[] Sigmas(bool clip, bool endpoints) => ParzenEstimator.ObservationSigmas(mus, 0, 1, clip, endpoints);

        Sigmas(clip: false, endpoints: false).Should().Equal([0.1, 0.3, 0.3], (a, b) => Math.Abs(a - b) < 1e-12);
        Sigmas(clip: false, endpoints: true).Should().Equal([0.4, 0.3, 0.3], (a, b) => Math.Abs(a - b) < 1e-12);

        // Magic clip: at least range / min(100, 1 + kernels) = 1 / 5 with 3 observations + prior.
        Sigmas(clip: true, endpoints: false).Should().Equal([0.2, 0.3, 0.3], (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void Constructor_Float_AddsPriorKernelOfFullWidthAndEqualWeights()
    {
        ParzenEstimator estimator = Create(SearchParameter.Float("x", -2, 3), 0.0, 1.0);

        estimator.Weights.Should().Equal([1 / 3.0, 1 / 3.0, 1 / 3.0], (a, b) => Math.Abs(a - b) < 1e-15);
        // Two observations: each uses its neighbour's distance, 1; magic clip min is 5 / 4 = 1.25; prior width 5.
        estimator.Sigmas(0).Should().Equal([1.25, 1.25, 5.0], (a, b) => Math.Abs(a - b) < 1e-12);
    }

    [Fact]
    public void ObservationWeights_ManyObservations_RampOlderOnesAndKeep25Flat()
    {
        ParzenEstimator.ObservationWeights(10).Should().AllBeEquivalentTo(1.0);

        double[] weights = ParzenEstimator.ObservationWeights(30);

        weights.Should().HaveCount(30);
        weights.Take(5).Should().Equal([1 / 30.0, 1 / 30.0 + 0.25 * 29 / 30, 1 / 30.0 + 0.5 * 29 / 30, 1 / 30.0 + 0.75 * 29 / 30, 1.0], (a, b) => Math.Abs(a - b) < 1e-12);
        weights.Skip(5).Should().AllBeEquivalentTo(1.0);
    }

    [Fact]
    public void LogPdf_Float_IntegratesToOne()
    {
        ParzenEstimator estimator = Create(SearchParameter.Float("x", -2, 3), -1.9, 0.3, 0.35, 2.9);

        Integrate(x => Math.Exp(estimator.LogPdf([x])), -2, 3).Should().BeApproximately(1, 1e-6);
    }

    [Fact]
    public void LogPdf_LogFloat_IntegratesToOneOverLogValue()
    {
        ParzenEstimator estimator = Create(SearchParameter.Float("lr", 1e-4, 1, log: true), 1e-4, 3e-3, 0.5);

        Integrate(t => Math.Exp(estimator.LogPdf([Math.Exp(t)])), Math.Log(1e-4), 0).Should().BeApproximately(1, 1e-6);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LogPdf_Integer_SumsToOne(bool log)
    {
        ParzenEstimator estimator = Create(SearchParameter.Integer("k", 1, 40, log), 1, 2, 2, 17, 40);

        Enumerable.Range(1, 40).Sum(k => Math.Exp(estimator.LogPdf([k]))).Should().BeApproximately(1, 1e-12);
    }

    [Fact]
    public void LogPdf_Categorical_IsPriorSmoothedCounts()
    {
        ParzenEstimator estimator = Create(SearchParameter.Categorical("c", "a", "b", "c", "d"), 1, 1, 3);

        // 3 observations + prior, each weighing 1/4. An observation's kernel puts prior weight / kernels = 1/4 on each
        // choice plus 1 on its own, normalised by 2; the prior kernel is uniform.
        double P(int observedHits) => 0.25 * (observedHits * (0.25 + 1) / 2 + (3 - observedHits) * 0.25 / 2) + 0.25 * 0.25;
        Math.Exp(estimator.LogPdf([0])).Should().BeApproximately(P(0), 1e-12);
        Math.Exp(estimator.LogPdf([1])).Should().BeApproximately(P(2), 1e-12);
        Math.Exp(estimator.LogPdf([3])).Should().BeApproximately(P(1), 1e-12);
        Enumerable.Range(0, 4).Sum(c => Math.Exp(estimator.LogPdf([c]))).Should().BeApproximately(1, 1e-12);
    }

    [Fact]
    public void Sample_JointIntegerAndCategorical_MatchesLogPdf()
    {
        SearchParameter[] parameters = [SearchParameter.Integer("k", 0, 5), SearchParameter.Categorical("c", "x", "y")];
        var estimator = new ParzenEstimator(parameters, [[0, 1], [4, 0], [5, 0]], priorWeight: 1, magicClip: true, considerEndpoints: false);
        var random = new Random(7);
        var counts = new int[6, 2];
        const int N = 40_000;
        for (int i = 0; i < N; i++)
        {
            double[] x = estimator.Sample(random);
            counts[(int)x[0], (int)x[1]]++;
        }

        double total = 0;
        for (int k = 0; k <= 5; k++)
        {
            for (int c = 0; c <= 1; c++)
            {
                double p = Math.Exp(estimator.LogPdf([k, c]));
                total += p;
                // Binomial standard error at most 0.0025.
                ((double)counts[k, c] / N).Should().BeApproximately(p, 0.01, $"cell k={k}, c={c}");
            }
        }

        total.Should().BeApproximately(1, 1e-12);
    }

    private static double Integrate(Func<double, double> f, double a, double b)
    {
        // Composite Simpson's rule.
        const int N = 20_000;
        double h = (b - a) / N;
        double sum = f(a) + f(b);
        for (int i = 1; i < N; i++)
        {
            sum += f(a + i * h) * (i % 2 == 1 ? 4 : 2);
        }

        return sum * h / 3;
    }
}
