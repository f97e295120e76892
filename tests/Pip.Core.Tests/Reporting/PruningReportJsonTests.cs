namespace Pip.Tests.Reporting;

public class PruningReportJsonTests
{
    private static async Task<PruningReport> RealReport()
    {
        double[] importance = [5, 3, 8, 1, 9, 2, 7, 4, 6, 10];
        var metric = new FixedMetric("pert", importance, usesPerturbations: true)
        {
            PerSet = (set, model, layer) => model.OriginalLayerIndices[layer] == 3 ? (set == 0 ? 0.0 : 5) : importance[model.OriginalLayerIndices[layer]],
        };
        PruningPipeline pipeline = new PipelineBuilder()
            .UseMetric(metric)
            .UseLexiconPerturber(new LexiconPerturberOptions { Lexicon = Lexicon.FromWords(["alter", "rover", "wheat", "mile"]) })
            .AddConsistencyDiscriminator()
            .AddLayerGuard(1, 1)
            .Build();
        return await pipeline.RunAsync(new FakeModel(10, 100, 1000), Texts.Samples(2));
    }

    [Fact]
    public async Task SerializeDeserialize_RealReport_RoundTrips()
    {
        PruningReport report = await RealReport();
        report.Rounds.SelectMany(r => r.Excluded).Should().NotBeEmpty();

        string json = PruningReportJson.Serialize(report);
        PruningReport back = PruningReportJson.Deserialize(json);

        back.Should().BeEquivalentTo(report, o => o.WithStrictOrdering());
        back.Settings.Target.Should().Be(report.Settings.Target);
        PruningReportJson.Serialize(back).Should().Be(json);
    }

    [Fact]
    public async Task Serialize_UsesSnakeCaseAndStringEnums()
    {
        string json = PruningReportJson.Serialize(await RealReport());

        json.Should().Contain("\"removed_original_layers\"").And.Contain("\"stop_reason\": \"target_reached\"")
            .And.Contain("\"parameter_ratio\": 0.2").And.Contain("\"per_perturbation_set_scores\"").And.Contain("\"is_real_word\"")
            .And.Contain("\"kind\": \"swap\"").And.Contain("\"token_ids\"");
    }

    [Fact]
    public void SerializeDeserialize_InfinityAndLayerTarget_RoundTrip()
    {
        var report = new PruningReport
        {
            Architecture = "X",
            Settings = new PruningSettings { Metric = "m", Strategy = "s", Filters = [], Target = PruningTarget.LayerCount(7), Seed = 1, PerturbationSets = 0, Norm = "L2" },
            StartedAt = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero),
            OriginalLayerCount = 2,
            OriginalParameterCount = 10,
            FinalLayerCount = 2,
            FinalParameterCount = 10,
            RemovedOriginalLayers = [],
            RemainingOriginalLayers = [0, 1],
            Samples = [new SampleRecord(0, "t")],
            Rounds = [new PruningRound { Round = 0, LayerCountBefore = 2, LayerCountAfter = 2, ParameterCountBefore = 10, ParameterCountAfter = 10, OriginalLayerIndices = [0, 1], Scores = [double.PositiveInfinity, -1], Candidates = [], Removed = [] }],
            StopReason = PruningStopReason.NoCandidates,
            TargetReached = false,
        };

        PruningReport back = PruningReportJson.Deserialize(PruningReportJson.Serialize(report));

        back.Should().BeEquivalentTo(report, o => o.WithStrictOrdering());
        back.Settings.Target.Layers.Should().Be(7);
    }

    [Fact]
    public async Task WriteRead_File_RoundTripsAndLeavesNoTempFile()
    {
        using var folder = new TempFolder();
        string path = Path.Combine(folder.Path, "sub", "report.json");
        PruningReport report = await RealReport();

        await PruningReportJson.WriteAsync(report, path);
        PruningReportJson.Write(report, path); // overwrite
        PruningReport back = await PruningReportJson.ReadAsync(path);

        back.Should().BeEquivalentTo(report, o => o.WithStrictOrdering());
        PruningReportJson.Read(path).RemovedOriginalLayers.Should().Equal(report.RemovedOriginalLayers);
        Directory.GetFiles(Path.GetDirectoryName(path)!).Should().Equal(path);
    }

    [Fact]
    public void Read_NotAReport_ThrowsNamingFile()
    {
        using var folder = new TempFolder();
        string path = folder.File("bad.json", "{\"architecture\": 3}");

        Action act = () => PruningReportJson.Read(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*{path}*");
    }

    [Fact]
    public void Read_MissingFile_ThrowsNamingIt()
    {
        Action act = () => PruningReportJson.Read("/nonexistent/report.json");

        act.Should().Throw<FileNotFoundException>().WithMessage("*/nonexistent/report.json*");
    }

    [Fact]
    public void Deserialize_NewerFormat_Throws()
    {
        string json = PruningReportJson.Serialize(new PruningReport
        {
            FormatVersion = 99,
            Architecture = "X",
            Settings = new PruningSettings { Metric = "m", Strategy = "s", Filters = [], Target = PruningTarget.Ratio(0.1), Seed = 1, PerturbationSets = 0, Norm = "L2" },
            StartedAt = DateTimeOffset.UnixEpoch,
            OriginalLayerCount = 1,
            OriginalParameterCount = 1,
            FinalLayerCount = 1,
            FinalParameterCount = 1,
            RemovedOriginalLayers = [],
            RemainingOriginalLayers = [0],
            Samples = [],
            Rounds = [],
            StopReason = PruningStopReason.TargetReached,
            TargetReached = true,
        });

        Action act = () => PruningReportJson.Deserialize(json);

        act.Should().Throw<InvalidDataException>().WithMessage("*version 99*");
    }
}
