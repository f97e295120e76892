using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Torch.Checkpoints;
using Pip.Torch.Tests.Pruning;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Checkpoints;

public sealed class NonFiniteWeightsTests : IDisposable
{
    private const string Poisoned = "model.layers.1.mlp.up_proj.weight";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "pip-tests-nonfinite-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>Saves a tiny model with a NaN, a +Inf and a -Inf in one weight.</summary>
    private string PoisonedCheckpoint(ScalarType dtype = ScalarType.Float32)
    {
        var folder = Path.Combine(_root, "poisoned-" + dtype);
        using var lm = PruningFixtures.Create(seed: 5, layers: 2);
        using (no_grad())
        {
            var flat = lm.Module.NamedWeights()[Poisoned].view(-1);
            flat[0].fill_(float.NaN);
            flat[3].fill_(float.PositiveInfinity);
            flat[7].fill_(float.NegativeInfinity);
        }
        lm.Save(folder, dtype);
        return folder;
    }

    [Fact]
    public void Count_NaNAndInfinities_CountsOnlyThem()
    {
        using var values = tensor(new[] { 1f, float.NaN, float.PositiveInfinity, -2f, float.NegativeInfinity, 0f });
        using var bf16 = values.to_type(ScalarType.BFloat16);
        using var integers = tensor(new long[] { 1, 2, 3 });
        using var finite = ones(3, 4);

        NonFiniteWeights.Count(values).Should().Be(3);
        NonFiniteWeights.Count(bf16).Should().Be(3);
        NonFiniteWeights.Count(integers).Should().Be(0);
        NonFiniteWeights.Count(finite).Should().Be(0);
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Load_WeightWithNaNAndInf_ThrowsNamingFileTensorAndCount(ScalarType stored)
    {
        var folder = PoisonedCheckpoint(stored);

        var act = () => TorchCausalLM.Load(folder, ScalarType.Float32);

        var error = act.Should().Throw<CheckpointFormatException>().Which;
        error.FilePath.Should().Be(Path.Combine(folder, "model.safetensors"));
        error.Field.Should().Be(Poisoned);
        error.Message.Should().Contain(Poisoned).And.Contain("3 of").And.Contain("NaN").And.Contain("AllowNonFiniteWeights");
    }

    [Fact]
    public void Load_AllowNonFiniteWeights_LoadsListsAndWarns()
    {
        var folder = PoisonedCheckpoint();
        var logger = new ListLogger();

        using var lm = TorchCausalLM.Load(folder, new TorchLoadOptions { Dtype = ScalarType.Float32, AllowNonFiniteWeights = true, Logger = logger });

        lm.NonFiniteTensors.Should().ContainSingle().Which.Should().Be(new NonFiniteTensor(Path.Combine(folder, "model.safetensors"), Poisoned, 3, lm.Module.NamedWeights()[Poisoned].numel()));
        logger.Warnings.Should().ContainSingle().Which.Should().Contain(Poisoned).And.Contain("3 of");
        NonFiniteWeights.Count(lm.Module.NamedWeights()[Poisoned]).Should().Be(3);
    }

    [Fact]
    public void Load_FiniteWeights_ListsNothing()
    {
        var folder = Path.Combine(_root, "clean");
        using (var original = PruningFixtures.Create(seed: 6, layers: 2)) original.Save(folder);

        using var lm = TorchCausalLM.Load(folder, new TorchLoadOptions { AllowNonFiniteWeights = true });

        lm.NonFiniteTensors.Should().BeEmpty();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Load_ConfigWithBillionLayers_RefusedBeforeAllocating(bool streamed)
    {
        var folder = Path.Combine(_root, streamed ? "huge-streamed" : "huge");
        using (var original = PruningFixtures.Create(seed: 7, layers: 2)) original.Save(folder);
        var configPath = Path.Combine(folder, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["num_hidden_layers"] = 1_000_000_000;
        File.WriteAllText(configPath, config.ToJsonString());

        Action act = streamed ? () => Pip.Torch.Streaming.StreamedCausalLM.Open(folder).Dispose() : () => TorchCausalLM.Load(folder).Dispose();

        act.Should().Throw<CheckpointFormatException>()
            .Which.Message.Should().Contain("config.json").And.Contain("num_hidden_layers").And.Contain("1000000000").And.Contain("2 layers");
    }

    [Fact]
    public void Load_CancelledToken_ThrowsOperationCanceled()
    {
        var folder = Path.Combine(_root, "cancel");
        using (var original = PruningFixtures.Create(seed: 8, layers: 2)) original.Save(folder);

        var act = () => TorchCausalLM.Load(folder, new TorchLoadOptions(), new CancellationToken(canceled: true));

        act.Should().Throw<OperationCanceledException>();
    }

    private sealed class ListLogger : ILogger
    {
        public List<string> Warnings { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning) Warnings.Add(formatter(state, exception));
        }
    }
}
