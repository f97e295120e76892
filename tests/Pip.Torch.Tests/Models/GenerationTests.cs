using Pip.Torch.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Models;

public sealed class GenerationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Forward_WithCacheInChunks_EqualsFullForward(bool tied)
    {
        var config = TinyModels.Config(tied: tied, scaling: TinyModels.Llama3Scaling);
        using var model = TinyModels.Random(config, seed: 12);
        var tokens = TinyModels.RandomTokens(10, 6);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var full = model.Logits(TinyModels.Ids(tokens));
        using var cache = new KvCache(config.NumHiddenLayers);
        var chunks = new[] { (0, 4), (4, 1), (5, 3), (8, 1), (9, 1) };
        foreach (var (start, length) in chunks)
        {
            using var output = model.call(new CausalLMInput(TinyModels.Ids(tokens[start..(start + length)])) { Cache = cache });
            cache.Length.Should().Be(start + length);
            TinyModels.MaxAbsDiff(output.Logits, full.narrow(1, start, length)).Should().BeLessThanOrEqualTo(1e-4);
        }
    }

    [Fact]
    public void Generate_WithCache_EqualsRecomputingFullSequence()
    {
        var config = TinyModels.Config(layers: 2);
        using var model = TinyModels.Random(config, seed: 31);
        var prompt = TinyModels.RandomTokens(5, 2);

        var cached = model.Generate(prompt, maxNewTokens: 15);
        var recomputed = model.GenerateWithoutCache(prompt, maxNewTokens: 15);

        cached.Should().HaveCount(15).And.Equal(recomputed);
        cached.Distinct().Count().Should().BeGreaterThan(1, "a degenerate model would not test much");
    }

    [Fact]
    public void Generate_EosProduced_StopsAfterIt()
    {
        using var model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 31);
        var prompt = TinyModels.RandomTokens(5, 2);
        var free = model.Generate(prompt, 15);
        var eos = free[3];
        var expectedLength = Array.IndexOf(free, eos) + 1;

        model.Generate(prompt, 15, eosId: eos).Should().Equal(free[..expectedLength]);
        model.GenerateWithoutCache(prompt, 15, eosId: eos).Should().Equal(free[..expectedLength]);
        model.Generate(prompt, 0).Should().BeEmpty();
    }

    [Fact]
    public void Generate_CancelledOrBadPrompt_Throws()
    {
        using var model = new LlamaForCausalLM(TinyModels.Config(layers: 1));
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var cancelled = () => model.Generate(new[] { 1, 2 }, 5, cancellationToken: cts.Token);
        cancelled.Should().Throw<OperationCanceledException>();
        var empty = () => model.Generate(Array.Empty<int>(), 5);
        empty.Should().Throw<ArgumentException>();
        var outside = () => model.Generate(new[] { 61 }, 5);
        outside.Should().Throw<ArgumentOutOfRangeException>().WithMessage("*61*");
    }
}
