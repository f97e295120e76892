using System.Text.Json;
using Pip.Search;

namespace Pip.Tests.Search;

public class SearchSpaceTests
{
    [Fact]
    public void Constructor_DuplicateName_ThrowsNamingIt()
    {
        Action act = () => _ = new SearchSpace(SearchParameter.Float("x", 0, 1), SearchParameter.Integer("x", 0, 3));

        act.Should().Throw<ArgumentException>().WithMessage("*'x' twice*");
    }

    [Fact]
    public void Constructor_NoParameter_Throws()
    {
        Action act = () => _ = new SearchSpace(Array.Empty<SearchParameter>());

        act.Should().Throw<ArgumentException>().WithMessage("*at least one parameter*");
    }

    [Theory]
    [InlineData(1.0, 1.0, false, "*'lr' needs low below high*")]
    [InlineData(2.0, 1.0, false, "*'lr' needs low below high*")]
    [InlineData(0.0, 1.0, true, "*'lr' is log-scaled, so low must be positive, but it is 0*")]
    [InlineData(double.NaN, 1.0, false, "*'lr' needs finite bounds*")]
    public void Float_BadBounds_ThrowNamingTheParameter(double low, double high, bool log, string message)
    {
        Action act = () => SearchParameter.Float("lr", low, high, log);

        act.Should().Throw<ArgumentException>().WithMessage(message);
    }

    [Fact]
    public void Integer_BadBounds_ThrowNamingTheParameter()
    {
        FluentActions.Invoking(() => SearchParameter.Integer("n", 5, 4)).Should().Throw<ArgumentException>().WithMessage("*'n' has low 5 above high 4*");
        FluentActions.Invoking(() => SearchParameter.Integer("n", 0, 4, log: true)).Should().Throw<ArgumentException>().WithMessage("*'n' is log-scaled*at least 1*");
    }

    [Fact]
    public void Categorical_NoOrDuplicateChoices_ThrowNamingTheParameter()
    {
        FluentActions.Invoking(() => SearchParameter.Categorical("data")).Should().Throw<ArgumentException>().WithMessage("*'data' has no choices*");
        FluentActions.Invoking(() => SearchParameter.Categorical("data", "c4", 2, "c4")).Should().Throw<ArgumentException>().WithMessage("*'data' lists the choice 'c4' twice*");
        FluentActions.Invoking(() => SearchParameter.Categorical(" ", "c4")).Should().Throw<ArgumentException>().WithMessage("*non-empty name*");
    }

    [Fact]
    public void Contains_Assignments_ChecksEveryParameterAndNoExtra()
    {
        var space = new SearchSpace(
            SearchParameter.Categorical("data", "wikitext", "c4", 3),
            SearchParameter.Integer("n", 1, 8, log: true),
            SearchParameter.Float("lr", 1e-4, 1e-2, log: true));

        space.Contains(Assign(("data", "c4"), ("n", 8), ("lr", 1e-3))).Should().BeTrue();
        space.Contains(Assign(("data", 3), ("n", 1), ("lr", 1e-4))).Should().BeTrue();
        space.Contains(Assign(("data", "3"), ("n", 1), ("lr", 1e-4))).Should().BeFalse("the string \"3\" is not the number 3");
        space.Contains(Assign(("data", "c4"), ("n", 2.5), ("lr", 1e-3))).Should().BeFalse();
        space.Contains(Assign(("data", "c4"), ("n", 9), ("lr", 1e-3))).Should().BeFalse();
        space.Contains(Assign(("data", "c4"), ("n", 2), ("lr", 0.5))).Should().BeFalse();
        space.Contains(Assign(("data", "c4"), ("n", 2))).Should().BeFalse();
        space.Contains(Assign(("data", "c4"), ("n", 2), ("lr", 1e-3), ("extra", 1))).Should().BeFalse();

        FluentActions.Invoking(() => space.Validate(Assign(("data", "c4"), ("n", 9), ("lr", 1e-3))))
            .Should().Throw<ArgumentException>().WithMessage("*'n' to 9, outside n ∈ [1, 8]*");
        FluentActions.Invoking(() => space.Validate(Assign(("data", "c4"), ("n", 2)))).Should().Throw<ArgumentException>().WithMessage("*does not set parameter 'lr'*");
    }

    [Fact]
    public void Json_RoundTrip_KeepsKindsBoundsAndChoices()
    {
        var space = new SearchSpace(
            SearchParameter.Categorical("data", "wikitext", 4, 0.5),
            SearchParameter.Integer("n", 1, 64, log: true),
            SearchParameter.Float("lr", 1e-5, 0.1, log: true),
            SearchParameter.Float("ratio", -1, 1));

        string json = JsonSerializer.Serialize(space);
        SearchSpace back = JsonSerializer.Deserialize<SearchSpace>(json)!;

        json.Should().Contain("\"kind\":\"categorical\"").And.Contain("\"kind\":\"integer\"").And.Contain("\"kind\":\"float\"");
        back.Parameters.Select(p => p.ToString()).Should().Equal(space.Parameters.Select(p => p.ToString()));
        back["data"].Should().BeOfType<CategoricalParameter>().Which.Choices.Should().Equal("wikitext", 4, 0.5);
        back["n"].Should().BeOfType<IntegerParameter>().Which.Log.Should().BeTrue();
        back["ratio"].Should().BeOfType<FloatParameter>().Which.Low.Should().Be(-1);
    }

    [Fact]
    public void ParameterValue_StringsAndNumbers_AreDistinctAndTyped()
    {
        ParameterValue text = "3";
        ParameterValue number = 3;

        text.Should().NotBe(number);
        number.Should().Be((ParameterValue)3.0);
        number.AsInt32().Should().Be(3);
        text.AsString().Should().Be("3");
        FluentActions.Invoking(() => text.AsDouble()).Should().Throw<InvalidOperationException>().WithMessage("*is a string*");
        FluentActions.Invoking(() => ((ParameterValue)2.5).AsInt32()).Should().Throw<InvalidOperationException>().WithMessage("*2.5 is not a 32-bit integer*");
        FluentActions.Invoking(() => new ParameterValue(double.NaN)).Should().Throw<ArgumentOutOfRangeException>();
        ((ParameterValue)1e-5).ToString().Should().Be("1E-05");
    }

    [Fact]
    public void ParameterAssignment_Json_RoundTripsAsObjectAndComparesByValue()
    {
        ParameterAssignment assignment = Assign(("data", "c4"), ("n", 12), ("lr", 0.1 + 0.2));

        string json = JsonSerializer.Serialize(assignment);
        ParameterAssignment back = JsonSerializer.Deserialize<ParameterAssignment>(json)!;

        json.Should().Be("{\"data\":\"c4\",\"n\":12,\"lr\":0.30000000000000004}");
        back.Equals(assignment).Should().BeTrue();
        back.Should().Equal(assignment);
        back.GetHashCode().Should().Be(assignment.GetHashCode());
        back.GetDouble("lr").Should().Be(0.1 + 0.2);
        Assign(("n", 12), ("lr", 0.1 + 0.2), ("data", "c4")).Equals(assignment).Should().BeTrue("order does not matter");
        Assign(("n", 12), ("lr", 0.3), ("data", "c4")).Equals(assignment).Should().BeFalse();
        FluentActions.Invoking(() => assignment.GetInt32("missing")).Should().Throw<KeyNotFoundException>().WithMessage("*'missing'*data, n, lr*");
        FluentActions.Invoking(() => JsonSerializer.Deserialize<ParameterAssignment>("{\"a\":[1]}")).Should().Throw<JsonException>();
        FluentActions.Invoking(() => JsonSerializer.Deserialize<ParameterAssignment>("{\"a\":1,\"a\":2}")).Should().Throw<JsonException>().WithMessage("*'a' twice*");
    }

    internal static ParameterAssignment Assign(params (string Name, ParameterValue Value)[] items) =>
        new(items.Select(i => new KeyValuePair<string, ParameterValue>(i.Name, i.Value)));
}
