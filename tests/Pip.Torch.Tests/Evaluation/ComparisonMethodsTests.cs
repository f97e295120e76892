using Pip.Torch.Evaluation;

namespace Pip.Torch.Tests.Evaluation;

public sealed class ComparisonMethodsTests
{
    [Fact]
    public void Defaults_PipTable2_MetricsAndStrategies()
    {
        ComparisonMethods.Defaults.Select(m => (m.Key, m.Metric, m.Strategy, m.ConsistencyDiscriminator)).Should().Equal(
            ("pip", "pip", "iterative", true),
            ("block-influence", "block-influence", "one-shot", false),
            ("perplexity-drop", "perplexity-drop", "one-shot", false),
            ("sleb", "perplexity-drop", "iterative", false),
            ("taylor", "taylor", "one-shot", false),
            ("magnitude", "magnitude", "one-shot", false),
            ("random", "random", "one-shot", false));
    }

    [Fact]
    public void Ablation_PipTable3_FullPerturbationOnlyIterationOnly()
    {
        ComparisonMethods.Ablation.Select(m => (m.Metric, m.Strategy, m.ConsistencyDiscriminator)).Should().Equal(
            ("pip", "iterative", true),
            ("pip", "one-shot", true),
            ("gradient", "iterative", false));
    }

    [Fact]
    public void ParseList_GroupsAndKeys_ExpandsAndKeepsEachMethodOnce()
    {
        var methods = ComparisonMethods.ParseList("ablation, default ,SLEB");

        methods.Select(m => m.Key).Should().Equal(
            "pip", "pip-perturbation-only", "pip-iteration-only", "block-influence", "perplexity-drop", "sleb", "taylor", "magnitude", "random");
    }

    [Fact]
    public void Parse_MetricColonStrategy_MakesTheMethod()
    {
        var method = ComparisonMethods.Parse("taylor:iterative");

        method.Should().BeEquivalentTo(new { Key = "taylor-iterative", Metric = "taylor", Strategy = "iterative", ConsistencyDiscriminator = false });
        ComparisonMethods.Parse("pip:one-shot").ConsistencyDiscriminator.Should().BeTrue();
    }

    [Theory]
    [InlineData("shortgpt")]
    [InlineData("taylor:twice")]
    [InlineData("nope:iterative")]
    public void Parse_Unknown_ThrowsListingTheKeys(string spec)
    {
        var act = () => ComparisonMethods.Parse(spec);

        act.Should().Throw<ArgumentException>().WithMessage($"Unknown method '{spec}'*pip, block-influence*METRIC:STRATEGY*");
    }

    [Fact]
    public void ParseList_Empty_Throws()
    {
        var act = () => ComparisonMethods.ParseList(" , ");

        act.Should().Throw<ArgumentException>().WithMessage("The method list is empty*");
    }
}
