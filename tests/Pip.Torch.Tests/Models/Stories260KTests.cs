using System.Text.Json;
using Pip.Torch.Models;

namespace Pip.Torch.Tests.Models;

/// <summary>The bundled stories260K (llama2.c, converted by Pip) against llama2.c's and transformers' known outputs.</summary>
public sealed class Stories260KTests
{
    /// <summary>llama2.c run.c's output (temperature 0, 60 steps, BOS + "Once upon a time"), from the model's README.</summary>
    private const string KnownText = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Pip.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Pip.sln not found above " + AppContext.BaseDirectory);
    }

    private static string ModelFolder => Path.Combine(RepoRoot(), "models", "stories260K");

    private static JsonElement Fixture(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoRoot(), "tests", "Fixtures", "stories260K-transformers.json")));
        return doc.RootElement.GetProperty(name).Clone();
    }

    [Fact]
    public void Generate_GreedyOnceUponATime_GivesLlama2CKnownTextAndTransformersIds()
    {
        using var model = TorchCausalLM.Load(ModelFolder);
        var prompt = model.Tokenize("Once upon a time");

        // run.c's 60 steps feed positions 0..59 and print the token sampled at each from the last prompt token on.
        var generated = model.Model.Generate(prompt, maxNewTokens: 60 - prompt.Count + 1, eosId: model.Tokenizer!.EosTokenId);

        prompt.Should().Equal(Fixture("generation").GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()));
        generated.Should().Equal(Fixture("generation").GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()));
        ("Once upon a time" + model.Tokenizer.Decode(generated)).Should().Be(KnownText);
    }

    [Fact]
    public async Task ComputeLoss_BrownText_AgreesWithTransformers()
    {
        var nll = Fixture("nll");
        var text = File.ReadAllText(Path.Combine(RepoRoot(), nll.GetProperty("text_file").GetString()!))[..nll.GetProperty("characters").GetInt32()];
        using var model = TorchCausalLM.Load(ModelFolder);
        var ids = model.Tokenize(text).Take(nll.GetProperty("max_tokens").GetInt32()).ToArray();

        var loss = await model.ComputeLossAsync([ids]);

        ids.Should().HaveCount(nll.GetProperty("tokens").GetInt32());
        ids.Take(8).Should().Equal(nll.GetProperty("first_ids").EnumerateArray().Select(e => e.GetInt32()));
        var expected = nll.GetProperty("nll").GetDouble();
        Math.Abs(loss - expected).Should().BeLessThan(1e-5 * expected);
    }
}
