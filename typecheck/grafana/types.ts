/**
 * Grafana dashboard JSON typed with @grafana/schema (pinned in ../package.json).
 *
 * tests/grafana/schema_check.py renders every generated dashboard as typed object
 * literals against these types and runs `tsc --strict`: a misspelled or misplaced key,
 * a wrong value type or a missing required option fails.
 *
 * The schema types panel `options`, `fieldConfig.defaults.custom` and `targets` as
 * open records; here each panel is typed with its own plugin's generated types
 * (PanelTypes below) and each query with its datasource's query type.
 */
import type * as S from '@grafana/schema';
import type * as BarGauge from '@grafana/schema/dist/esm/raw/composable/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen';
import type * as Elasticsearch from '@grafana/schema/dist/esm/raw/composable/elasticsearch/dataquery/x/ElasticsearchDataQuery_types.gen';
import type * as Heatmap from '@grafana/schema/dist/esm/raw/composable/heatmap/panelcfg/x/HeatmapPanelCfg_types.gen';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as StateTimeline from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as Text from '@grafana/schema/dist/esm/raw/composable/text/panelcfg/x/TextPanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

/**
 * A type as it appears in JSON: string enums become the union of their values
 * (`LegendDisplayMode` -> "hidden" | "list" | "table"), since a JSON file holds the
 * value, never the enum member. Everything else, optionality included, is kept.
 */
export type Json<T> =
  T extends string ? (string extends T ? T : `${T}`)
  : T extends number | boolean | null | undefined ? T
  : T extends Array<infer U> ? Array<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;

/**
 * The Prometheus query. Its schema is not in @grafana/schema 12 (it moved to
 * @grafana/prometheus, not published for this version): these are the fields of
 * `Prometheus` in grafana/grafana packages/grafana-prometheus/src/dataquery.ts
 * (v12.4), without `scope` (@grafana/data), which mlmon never sets.
 */
export interface PrometheusQuery extends S.DataQuery {
  editorMode?: 'builder' | 'code';
  exemplar?: boolean;
  expr: string;
  format?: 'time_series' | 'table' | 'heatmap';
  instant?: boolean;
  intervalFactor?: number;
  legendFormat?: string;
  range?: boolean;
}

/** Queries per datasource plugin id (the `type` of the panel's datasource ref). */
export interface QueryTypes {
  prometheus: PrometheusQuery;
  elasticsearch: Elasticsearch.ElasticsearchDataQuery;
}

/** Per panel plugin id: its `options` and its `fieldConfig.defaults.custom` (never: none). */
export interface PanelTypes {
  bargauge: { options: BarGauge.Options; custom: never };
  heatmap: { options: Heatmap.Options; custom: Heatmap.FieldConfig };
  stat: { options: Stat.Options; custom: never };
  'state-timeline': { options: StateTimeline.Options; custom: StateTimeline.FieldConfig };
  table: { options: Table.Options; custom: Table.FieldConfig };
  text: { options: Text.Options; custom: never };
  timeseries: { options: TimeSeries.Options; custom: TimeSeries.FieldConfig };
}

type FieldDefaults<C> = Json<Omit<S.FieldConfig, 'custom'>> & { custom?: Json<C> };

/** A panel of plugin P querying datasource D, every level typed. */
export type TypedPanel<P extends keyof PanelTypes, D extends keyof QueryTypes> =
  Json<Omit<S.Panel, 'type' | 'options' | 'fieldConfig' | 'targets' | 'datasource'>> & {
    type: P;
    datasource: { type: D; uid: string };
    options: Json<PanelTypes[P]['options']>;
    fieldConfig: { defaults: FieldDefaults<PanelTypes[P]['custom']>; overrides: Json<S.FieldConfigSource['overrides']> };
    targets: Array<Json<QueryTypes[D]>>;
  };

/** A panel that queries nothing (text). */
export type StaticPanel<P extends keyof PanelTypes> =
  Json<Omit<S.Panel, 'type' | 'options' | 'fieldConfig' | 'targets'>> & {
    type: P;
    options: Json<PanelTypes[P]['options']>;
    fieldConfig?: { defaults: FieldDefaults<PanelTypes[P]['custom']>; overrides: Json<S.FieldConfigSource['overrides']> };
  };

export type RowPanel = Json<Omit<S.RowPanel, 'panels'>> & { panels: never[] };

/** The dashboard; its panels are checked one by one (TypedPanel, RowPanel) where they are declared. */
export type Dashboard = Json<Omit<S.Dashboard, 'panels'>> & { panels: unknown[] };
