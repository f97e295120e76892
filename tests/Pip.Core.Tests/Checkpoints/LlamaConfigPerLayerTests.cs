using System.Text.Json.Nodes;
using Pip.Checkpoints;

namespace Pip.Core.Tests.Checkpoints;

/// <summary>Per-layer shapes: <see cref="LlamaConfig.LayerShapes"/> and the <c>per_layer_config</c> key (transformers PR #45333).</summary>
public sealed class LlamaConfigPerLayerTests
{
    private const string Source = "/models/pruned/config.json";

    // 4 layers, 4 heads sharing 2 key/value heads, head_dim 16, MLP 256.
    private const string Base = """
        {"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":64,"intermediate_size":256,"num_hidden_layers":4,
         "num_attention_heads":4,"num_key_value_heads":2,"head_dim":16,"serialize_explicit_per_layer_config":false}
        """;

    private static readonly LayerShape Global = new(4, 2, 256);

    private static LlamaConfig ParseWith(string perLayerJson, int layers = 4)
    {
        var obj = JsonNode.Parse(Base)!.AsObject();
        obj["per_layer_config"] = JsonNode.Parse(perLayerJson);
        obj["num_hidden_layers"] = layers;
        return LlamaConfigSerializer.Parse(obj.ToJsonString(), Source);
    }

    private static void Fails(string perLayerJson, string field, string problem)
    {
        var act = () => ParseWith(perLayerJson);
        var ex = act.Should().Throw<CheckpointFormatException>().Which;
        ex.FilePath.Should().Be(Source);
        ex.Field.Should().Be(field);
        ex.Message.Should().Contain(Source).And.Contain(field).And.MatchRegex(problem);
    }

    [Fact]
    public void Parse_SparsePerLayerConfig_ResolvesEveryLayerAgainstGlobalValues()
    {
        var c = ParseWith("""{"1":{"intermediate_size":100},"3":{"num_attention_heads":2,"num_key_value_heads":1}}""");

        c.GlobalShape.Should().Be(Global);
        c.IsHeterogeneous.Should().BeTrue();
        c.LayerShapes.Should().Equal(Global, Global with { IntermediateSize = 100 }, Global, new LayerShape(2, 1, 256));
        c.ShapeOf(3).Should().Be(new LayerShape(2, 1, 256));
        c.HeadDim.Should().Be(16);
    }

    [Fact]
    public void Parse_ZeroPaddedKeysAndEmptySkip_AreAccepted()
    {
        var keys = string.Join(",", Enumerable.Range(0, 12).Select(i => $"\"{i:D2}\":{{\"intermediate_size\":{100 + i},\"skip\":[]}}"));
        var c = ParseWith("{" + keys + "}", layers: 12);

        c.LayerShapes!.Select(s => s.IntermediateSize).Should().Equal(Enumerable.Range(100, 12));
    }

    [Fact]
    public void Parse_OverridesEqualToGlobalOrEmpty_GiveNoLayerShapes()
    {
        ParseWith("""{"0":{"intermediate_size":256},"2":{}}""").LayerShapes.Should().BeNull();
        ParseWith("{}").LayerShapes.Should().BeNull();
        ParseWith("null").LayerShapes.Should().BeNull();
    }

    [Fact]
    public void Parse_EveryLayerOverridden_KeepsGlobalValuesAndLayerShapes()
    {
        // transformers keeps the global value when every layer overrides it; Pip does the same.
        var c = ParseWith("""{"0":{"num_key_value_heads":1},"1":{"num_key_value_heads":1},"2":{"num_key_value_heads":1},"3":{"num_key_value_heads":1}}""");

        c.NumKeyValueHeads.Should().Be(2);
        c.LayerShapes.Should().AllBeEquivalentTo(new LayerShape(4, 1, 256));
        c.IsHeterogeneous.Should().BeTrue();
    }

    [Theory]
    [InlineData("[]", "per_layer_config", "must be an object")]
    [InlineData("""{"a":{}}""", "per_layer_config.a", "not a layer index")]
    [InlineData("""{"-1":{}}""", "per_layer_config.-1", "not a layer index")]
    [InlineData("""{"4":{"intermediate_size":8}}""", "per_layer_config.4", "layer 4 does not exist.*num_hidden_layers is 4")]
    [InlineData("""{"1":{"intermediate_size":8},"01":{"intermediate_size":9}}""", "per_layer_config.01", "layer 1 is listed twice")]
    [InlineData("""{"1":5}""", "per_layer_config.1", "must be an object")]
    [InlineData("""{"1":{"head_dim":8}}""", "per_layer_config.1.head_dim", "'head_dim' is not supported")]
    [InlineData("""{"1":{"sliding_window":8}}""", "per_layer_config.1.sliding_window", "not supported")]
    [InlineData("""{"1":{"skip":["mlp"]}}""", "per_layer_config.1.skip", "skipping sub-modules \\(mlp\\) is not supported")]
    [InlineData("""{"1":{"skip":"mlp"}}""", "per_layer_config.1.skip", "must be a list")]
    [InlineData("""{"1":{"intermediate_size":0}}""", "per_layer_config.1.intermediate_size", "must be positive")]
    [InlineData("""{"1":{"intermediate_size":null}}""", "per_layer_config.1.intermediate_size", "found null")]
    [InlineData("""{"1":{"num_attention_heads":"4"}}""", "per_layer_config.1.num_attention_heads", "must be an integer")]
    [InlineData("""{"2":{"num_attention_heads":3}}""", "per_layer_config.2.num_key_value_heads", "layer 2.*3.*not a multiple.*2")]
    public void Parse_InvalidPerLayerConfig_ThrowsNamingFileAndField(string perLayer, string field, string problem) =>
        Fails(perLayer, field, problem);

    [Fact]
    public void Serialize_PerLayerShapes_WritesSparseZeroPaddedOverridesThatLoadBack()
    {
        var shapes = Enumerable.Repeat(Global, 11).ToArray();
        shapes[2] = new LayerShape(2, 1, 256);
        shapes[10] = new LayerShape(4, 2, 128);
        var c = ParseWith("{}", layers: 11) with { LayerShapes = shapes };

        var text = LlamaConfigSerializer.Serialize(c);

        var perLayer = JsonNode.Parse(text)!["per_layer_config"]!;
        JsonNode.DeepEquals(perLayer, JsonNode.Parse("""{"02":{"num_attention_heads":2,"num_key_value_heads":1},"10":{"intermediate_size":128}}""")).Should().BeTrue(perLayer.ToJsonString());
        text.IndexOf("\"02\"", StringComparison.Ordinal).Should().BeLessThan(text.IndexOf("\"10\"", StringComparison.Ordinal));
        var again = LlamaConfigSerializer.Parse(text, Source);
        again.LayerShapes.Should().Equal(shapes);
        LlamaConfigSerializer.Serialize(again).Should().Be(text);
        again.Raw!["serialize_explicit_per_layer_config"]!.GetValue<bool>().Should().BeFalse("unknown keys survive");
    }

    [Fact]
    public void Serialize_LayerShapesAllGlobal_RemovesPerLayerConfig()
    {
        var c = ParseWith("""{"1":{"intermediate_size":100}}""") with { LayerShapes = Enumerable.Repeat(Global, 4).ToArray() };

        var obj = JsonNode.Parse(LlamaConfigSerializer.Serialize(c))!.AsObject();

        obj.ContainsKey("per_layer_config").Should().BeFalse();
    }

    [Fact]
    public void Serialize_LayerShapesOfWrongCount_Throws()
    {
        var c = ParseWith("""{"1":{"intermediate_size":100}}""") with { NumHiddenLayers = 3 };

        var act = () => LlamaConfigSerializer.Serialize(c);

        act.Should().Throw<ArgumentException>().WithMessage("*4 layer shapes for 3 layers*");
    }

    [Fact]
    public void WithLayerShapes_AllEqual_GivesStandardConfigWithThatShape()
    {
        var c = LlamaConfigSerializer.Parse(Base, Source).WithLayerShapes(Enumerable.Repeat(new LayerShape(2, 1, 100), 4).ToArray());

        c.LayerShapes.Should().BeNull();
        c.GlobalShape.Should().Be(new LayerShape(2, 1, 100));
        c.HeadDim.Should().Be(16);
        c.IsHeterogeneous.Should().BeFalse();
        JsonNode.Parse(LlamaConfigSerializer.Serialize(c))!.AsObject().ContainsKey("per_layer_config").Should().BeFalse();
    }

    [Fact]
    public void WithLayerShapes_Different_PicksMostCommonAsGlobalAndLargerOnTies()
    {
        var c = LlamaConfigSerializer.Parse(Base, Source).WithLayerShapes(
            [new(2, 1, 100), new(4, 2, 200), new(2, 1, 200), new(4, 2, 100)]);

        c.GlobalShape.Should().Be(new LayerShape(4, 2, 200));
        c.LayerShapes.Should().Equal(new LayerShape(2, 1, 100), new LayerShape(4, 2, 200), new LayerShape(2, 1, 200), new LayerShape(4, 2, 100));
        var perLayer = JsonNode.Parse(LlamaConfigSerializer.Serialize(c))!["per_layer_config"]!;
        JsonNode.DeepEquals(perLayer, JsonNode.Parse("""
            {"0":{"intermediate_size":100,"num_attention_heads":2,"num_key_value_heads":1},
             "2":{"num_attention_heads":2,"num_key_value_heads":1},
             "3":{"intermediate_size":100}}
            """)).Should().BeTrue(perLayer.ToJsonString());
    }

    [Fact]
    public void WithLayerShapes_WrongCountOrInvalidShape_Throws()
    {
        var c = LlamaConfigSerializer.Parse(Base, Source);
        var wrongCount = () => c.WithLayerShapes([Global]);
        wrongCount.Should().Throw<ArgumentException>().WithMessage("*1 layer shapes*4 layers*");
        var invalid = () => c.WithLayerShapes([Global, Global, new(4, 3, 256), Global]);
        invalid.Should().Throw<ArgumentException>().WithMessage("*layer 2*");
    }

    [Fact]
    public void ShapeOf_OutOfRangeOrMismatchedShapes_Throws()
    {
        var c = ParseWith("""{"1":{"intermediate_size":100}}""");
        var outOfRange = () => c.ShapeOf(4);
        outOfRange.Should().Throw<ArgumentOutOfRangeException>();
        var mismatched = () => (c with { NumHiddenLayers = 5 }).ShapeOf(0);
        mismatched.Should().Throw<InvalidOperationException>().WithMessage("*4 layer shapes for 5 layers*");
    }
}
