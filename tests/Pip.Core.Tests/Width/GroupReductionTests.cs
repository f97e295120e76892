namespace Pip.Tests.Width;

public sealed class GroupReductionTests
{
    [Theory]
    [InlineData(WidthGroupReduction.Sum, 7.5)]
    [InlineData(WidthGroupReduction.Mean, 2.5)]
    [InlineData(WidthGroupReduction.Max, 4.0)]
    public void Reduce_ThreeParts_GivesTheReduction(WidthGroupReduction reduction, double expected) =>
        GroupReduction.Reduce([1.5, 4.0, 2.0], reduction).Should().BeApproximately(expected, 1e-12);

    [Fact]
    public void Reduce_Product_IsTheLogOfTheProductWithoutUnderflow()
    {
        GroupReduction.Reduce([2.0, 3.0, 0.5], WidthGroupReduction.Product).Should().BeApproximately(Math.Log(3.0), 1e-12);

        // 1e-200 · 1e-200 underflows to 0 in double; its logarithm does not.
        GroupReduction.Reduce([1e-200, 1e-200], WidthGroupReduction.Product).Should().BeApproximately(-400 * Math.Log(10), 1e-9);
        GroupReduction.Reduce([0.0, 5.0], WidthGroupReduction.Product).Should().Be(double.NegativeInfinity);
    }

    [Fact]
    public void ReduceUnits_PartsByUnit_ReducesEachUnitAcrossParts()
    {
        IReadOnlyList<IReadOnlyList<double>> parts = [[1, 2, 3], [10, 0, 1], [4, 4, 4]];

        GroupReduction.ReduceUnits(parts, WidthGroupReduction.Sum).Should().Equal(15, 6, 8);
        GroupReduction.ReduceUnits(parts, WidthGroupReduction.Max).Should().Equal(10, 4, 4);
        GroupReduction.ReduceUnits(parts, WidthGroupReduction.Mean).Should().Equal(5, 2, 8.0 / 3);
    }

    [Fact]
    public void ReduceUnits_UnequalParts_Throws() =>
        FluentActions.Invoking(() => GroupReduction.ReduceUnits([[1, 2], [1]], WidthGroupReduction.Sum)).Should().Throw<ArgumentException>();

    [Theory]
    [InlineData("sum", WidthGroupReduction.Sum)]
    [InlineData("MEAN", WidthGroupReduction.Mean)]
    [InlineData("prod", WidthGroupReduction.Product)]
    [InlineData("product", WidthGroupReduction.Product)]
    public void TryParse_KnownName_GivesTheReduction(string name, WidthGroupReduction expected)
    {
        GroupReduction.TryParse(name, out var reduction).Should().BeTrue();
        reduction.Should().Be(expected);
    }
}
