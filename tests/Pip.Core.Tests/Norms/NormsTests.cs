using Microsoft.Extensions.Options;

namespace Pip.Tests.Norms;

public class NormsTests
{
    [Fact]
    public void Compute_KnownVector_GivesHandValues()
    {
        float[] v = [3f, -4f, 0f, 1f];
        Pip.Norms.L1.Compute(v).Should().Be(8);
        Pip.Norms.L2.Compute(v).Should().BeApproximately(Math.Sqrt(26), 1e-12);
        Pip.Norms.LInf.Compute(v).Should().Be(4);
    }

    [Fact]
    public void Combine_PartNorms_GivesHandValues()
    {
        Pip.Norms.L1.Combine([1, 2, 3.5]).Should().Be(6.5);
        Pip.Norms.L2.Combine([3, 4]).Should().BeApproximately(5, 1e-12);
        Pip.Norms.LInf.Combine([1, 5, 2]).Should().Be(5);
        Pip.Norms.L2.Combine([]).Should().Be(0);
    }

    [Theory]
    [InlineData("L1")]
    [InlineData("L2")]
    [InlineData("Linf")]
    public void Combine_NormsOfParts_EqualsNormOfWhole(string name)
    {
        INormAggregator norm = Pip.Norms.Get(name);
        var random = new Random(7);
        float[] whole = [.. Enumerable.Range(0, 1000).Select(_ => (float)(random.NextDouble() * 20 - 10))];
        double[] parts = [norm.Compute(whole.AsSpan(0, 100)), norm.Compute(whole.AsSpan(100, 650)), norm.Compute(whole.AsSpan(750))];

        norm.Combine(parts).Should().BeApproximately(norm.Compute(whole), 1e-9 * norm.Compute(whole));
    }

    [Fact]
    public void Combine_L2HugeParts_DoesNotOverflow()
    {
        Pip.Norms.L2.Combine([1e200, 1e200]).Should().BeApproximately(Math.Sqrt(2) * 1e200, 1e188);
    }

    [Fact]
    public void Compute_NaNInput_GivesNaN()
    {
        Pip.Norms.L1.Compute([1f, float.NaN]).Should().Be(double.NaN);
        Pip.Norms.L2.Compute([1f, float.NaN]).Should().Be(double.NaN);
        Pip.Norms.LInf.Compute([1f, float.NaN]).Should().Be(double.NaN);
    }

    [Theory]
    [InlineData("L1", 1.0)]
    [InlineData("l2", 2.0)]
    [InlineData("Linf", double.PositiveInfinity)]
    [InlineData("LInf", double.PositiveInfinity)]
    [InlineData("inf", double.PositiveInfinity)]
    [InlineData("LINF", double.PositiveInfinity)]
    public void Get_KnownNameAnyCase_GivesNormOfThatOrder(string name, double order)
    {
        Pip.Norms.Get(name).Order.Should().Be(order);
    }

    [Fact]
    public void Get_UnknownName_ThrowsListingValidNames()
    {
        Action act = () => Pip.Norms.Get("L3");

        act.Should().Throw<ArgumentException>().WithMessage("*'L3'*L1, L2, Linf*");
    }

    [Fact]
    public void TryGet_Null_ReturnsFalse()
    {
        Pip.Norms.TryGet(null, out INormAggregator? norm).Should().BeFalse();
        norm.Should().BeNull();
    }
}
