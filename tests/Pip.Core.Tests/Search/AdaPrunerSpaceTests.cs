using Microsoft.Extensions.Options;
using Pip.Search;

namespace Pip.Tests.Search;

public class AdaPrunerSpaceTests
{
    internal static AdaPrunerSpaceOptions WidthOptions() => new()
    {
        Corpora = [new AdaPrunerCorpus("brown", "/data/brown.txt"), new AdaPrunerCorpus("news", "/data/news.txt")],
        SampleCounts = [4, 16],
        SequenceLengths = [64, 128],
        Metrics = ["taylor", "flap", "magnitude"],
        GroupReductions = [WidthGroupReduction.Sum, WidthGroupReduction.Max],
    };

    [Fact]
    public void Constructor_Width_HasTheParametersInOrderAndTheGridSize()
    {
        var space = new AdaPrunerSpace(WidthOptions());

        space.Space.Parameters.Select(p => p.Name).Should().Equal("corpus", "samples", "seq_len", "calibration_seed", "metric", "aggregation", "allocation");
        space.GridSize.Should().Be(2 * 2 * 2 * 1 * 3 * 2 * 1);
        space.Grid().Should().HaveCount(48).And.OnlyHaveUniqueItems();
        ((CategoricalParameter)space.Space["aggregation"]).Choices.Should().Equal(new ParameterValue("sum"), new ParameterValue("max"));
    }

    [Fact]
    public void Constructor_Depth_UsesPerturberAndNormAndTheDepthMetricsByDefault()
    {
        var space = new AdaPrunerSpace(new AdaPrunerSpaceOptions { Mode = AdaPrunerMode.Depth, Corpora = [new AdaPrunerCorpus("brown", "b.txt")] });

        space.Space.Parameters.Select(p => p.Name).Should().Equal("corpus", "samples", "seq_len", "calibration_seed", "metric", "perturber", "norm");
        space.Metrics.Should().Equal(AdaPrunerConstants.DefaultDepthMetrics);
        ((CategoricalParameter)space.Space["norm"]).Choices.Select(c => c.AsString()).Should().Equal("L1", "L2", "Linf");
    }

    [Fact]
    public void DecodeEncode_EveryGridPoint_RoundTrips()
    {
        var space = new AdaPrunerSpace(WidthOptions());
        foreach (ParameterAssignment point in space.Grid())
        {
            AdaPrunerConfiguration configuration = space.Decode(point);
            space.Encode(configuration).Equals(point).Should().BeTrue();
        }

        var depth = new AdaPrunerSpace(new AdaPrunerSpaceOptions { Mode = AdaPrunerMode.Depth, Corpora = [new AdaPrunerCorpus("b", "b.txt")], SampleCounts = [2], SequenceLengths = [8] });
        foreach (ParameterAssignment point in depth.Grid())
        {
            depth.Encode(depth.Decode(point)).Equals(point).Should().BeTrue();
        }
    }

    [Fact]
    public void Decode_WidthAssignment_GivesTheTypedConfiguration()
    {
        var space = new AdaPrunerSpace(WidthOptions());
        var assignment = new ParameterAssignment(new Dictionary<string, ParameterValue>
        {
            ["corpus"] = "news", ["samples"] = 16, ["seq_len"] = 64, ["calibration_seed"] = 42, ["metric"] = "taylor", ["aggregation"] = "max", ["allocation"] = "uniform",
        });

        AdaPrunerConfiguration c = space.Decode(assignment);

        c.Should().BeEquivalentTo(new AdaPrunerConfiguration
        {
            Mode = AdaPrunerMode.Width,
            Corpus = "news",
            CorpusPath = "/data/news.txt",
            SampleCount = 16,
            SequenceLength = 64,
            CalibrationSeed = 42,
            Metric = "taylor",
            GroupReduction = WidthGroupReduction.Max,
            Allocation = WidthAllocation.Uniform,
        });
        c.Key.Should().Be("width metric=taylor corpus=news samples=16 seq_len=64 calibration_seed=42 aggregation=max allocation=uniform");
    }

    [Fact]
    public void DecodeEncode_OutsideTheSpace_ThrowNamingTheParameter()
    {
        var space = new AdaPrunerSpace(WidthOptions());
        var assignment = new ParameterAssignment(new Dictionary<string, ParameterValue>
        {
            ["corpus"] = "news", ["samples"] = 8, ["seq_len"] = 64, ["calibration_seed"] = 42, ["metric"] = "taylor", ["aggregation"] = "max", ["allocation"] = "uniform",
        });
        FluentActions.Invoking(() => space.Decode(assignment)).Should().Throw<ArgumentException>().WithMessage("*samples*");

        AdaPrunerConfiguration ok = space.Decode(space.Grid().First());
        FluentActions.Invoking(() => space.Encode(ok with { Metric = "wanda-sp" })).Should().Throw<ArgumentException>().WithMessage("*metric*");
        FluentActions.Invoking(() => space.Encode(ok with { Mode = AdaPrunerMode.Depth })).Should().Throw<ArgumentException>().WithMessage("*Depth*");
    }

    [Fact]
    public void Key_LeavesOutSettingsTheMetricDoesNotUse()
    {
        var space = new AdaPrunerSpace(WidthOptions());
        AdaPrunerConfiguration flap = space.Decode(space.Grid().First()) with { Metric = "flap" };
        AdaPrunerConfiguration magnitude = flap with { Metric = "magnitude" };
        AdaPrunerConfiguration taylor = flap with { Metric = "taylor" };

        (flap with { GroupReduction = WidthGroupReduction.Max }).Key.Should().Be(flap.Key, "FLAP has one part per unit");
        (taylor with { GroupReduction = WidthGroupReduction.Max }).Key.Should().NotBe(taylor.Key);
        (magnitude with { Corpus = "news", SampleCount = 99, SequenceLength = 7 }).Key.Should().Be(magnitude.Key, "magnitude reads no data");
        (taylor with { Corpus = "news" }).Key.Should().NotBe(taylor.Key);

        var depth = new AdaPrunerConfiguration { Mode = AdaPrunerMode.Depth, Corpus = "b", CorpusPath = "b", SampleCount = 4, SequenceLength = 64, Metric = "taylor", Perturber = "lexicon", Norm = "L1" };
        (depth with { Perturber = "random-char", Norm = "L2" }).Key.Should().Be(depth.Key, "Taylor+ uses neither a perturber nor a norm");
        var pip = depth with { Metric = "pip" };
        (pip with { Perturber = "random-char" }).Key.Should().NotBe(pip.Key);
        (pip with { Norm = "Linf" }).Key.Should().NotBe(pip.Key);
        (depth with { Metric = "gradient", Norm = "Linf" }).Key.Should().NotBe((depth with { Metric = "gradient" }).Key);
    }

    [Fact]
    public void DistinctConfigurations_CollapseEquivalentPoints()
    {
        var space = new AdaPrunerSpace(WidthOptions());

        // taylor: corpus·samples·seq_len·aggregation = 16 keys; flap: 8 (no aggregation); magnitude: 2 (no data, only the aggregation).
        space.DistinctConfigurations().Should().HaveCount(16 + 8 + 2);
        space.DistinctConfigurations().Select(c => c.Key).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void Constructor_InvalidOptions_ListsEveryProblem()
    {
        var options = new AdaPrunerSpaceOptions
        {
            Corpora = [new AdaPrunerCorpus("a", "a.txt"), new AdaPrunerCorpus("a", "b.txt")],
            SampleCounts = [0, 4, 4],
            SequenceLengths = [],
            Metrics = [" "],
        };

        var e = FluentActions.Invoking(() => new AdaPrunerSpace(options)).Should().Throw<OptionsValidationException>().Which;
        e.Failures.Should().Contain(f => f.Contains("Corpora") && f.Contains("'a'"));
        e.Failures.Should().Contain(f => f.Contains("SampleCounts") && f.Contains("'0'"));
        e.Failures.Should().Contain(f => f.Contains("SampleCounts") && f.Contains("twice"));
        e.Failures.Should().Contain(f => f.Contains("SequenceLengths"));
        e.Failures.Should().Contain(f => f.Contains("Metrics"));

        var depth = new AdaPrunerSpaceOptions { Mode = AdaPrunerMode.Depth, Corpora = [new AdaPrunerCorpus("a", "a.txt")], Norms = ["L3"], Perturbers = ["chat"] };
        var d = FluentActions.Invoking(() => new AdaPrunerSpace(depth)).Should().Throw<OptionsValidationException>().Which;
        d.Failures.Should().Contain(f => f.Contains("Norms") && f.Contains("L3"));
        d.Failures.Should().Contain(f => f.Contains("Perturbers") && f.Contains("chat"));
    }

    [Fact]
    public void Constructor_OptionsChangedAfterwards_DoNotAffectTheSpace()
    {
        var options = WidthOptions();
        var space = new AdaPrunerSpace(options);
        options.SampleCounts.Add(64);
        options.Corpora.Clear();

        space.GridSize.Should().Be(48);
        space.Corpora.Should().HaveCount(2);
    }
}
