using Pip.Search;

namespace Pip.Tests.Search;

public class GaussianTests
{
    // Reference values from Python's math.erfc (correctly rounded to about 1 ulp).
    [Theory]
    [InlineData(0.5, 0.4795001221869535)]
    [InlineData(1.99, 0.004888586800383003)]
    [InlineData(2.01, 0.004475150644751763)]
    [InlineData(3.0, 2.2090496998585438e-05)]
    [InlineData(6.0, 2.1519736712498916e-17)]
    [InlineData(-1.5, 1.9661051464753108)]
    public void Erfc_KnownValues_MatchToRelative1e12(double x, double expected)
    {
        Gaussian.Erfc(x).Should().BeApproximately(expected, Math.Abs(expected) * 1e-12);
        Gaussian.LogErfc(x).Should().BeApproximately(Math.Log(expected), 1e-12);
    }

    [Fact]
    public void LogCdf_FarTails_StaysAccurate()
    {
        Gaussian.LogCdf(-10).Should().BeApproximately(-53.23128515051246, 1e-11);
        Gaussian.LogCdf(-30).Should().BeApproximately(-454.3212439563431, 1e-10);
        Gaussian.LogCdf(-1000).Should().BeLessThan(-500_000).And.BeGreaterThan(double.NegativeInfinity);
        Gaussian.LogCdf(8).Should().BeApproximately(-6.22096057427178e-16, 1e-25);
        Gaussian.Cdf(1).Should().BeApproximately(0.8413447460685429, 1e-15);
    }

    [Fact]
    public void LogMass_Intervals_MatchDifferencesOfCdf()
    {
        Gaussian.LogMass(-1, 1).Should().BeApproximately(-0.38171514630212616, 1e-13);
        Gaussian.LogMass(-3, -2.5).Should().BeApproximately(-5.326764724079059, 1e-12);
        Gaussian.LogMass(2.5, 3).Should().BeApproximately(-5.326764724079059, 1e-12);
        Gaussian.LogMass(30, 31).Should().BeApproximately(-454.32124395634315, 1e-9);
        Gaussian.LogMass(-31, -30).Should().BeApproximately(-454.32124395634315, 1e-9);
        Gaussian.LogMass(1, 1).Should().Be(double.NegativeInfinity);
    }

    [Fact]
    public void NextTruncated_Draws_StayInRangeWithTheRightMean()
    {
        var random = new Random(1);
        double sum = 0;
        const int N = 20_000;
        for (int i = 0; i < N; i++)
        {
            double x = Gaussian.NextTruncated(random, 0, 1, 0, 10);
            x.Should().BeInRange(0, 10);
            sum += x;
        }

        // Mean of the half-normal: sqrt(2/pi) = 0.7979; standard error of the mean about 0.004.
        (sum / N).Should().BeApproximately(0.7979, 0.02);
    }
}
